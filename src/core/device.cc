// DeviceTensorCopy: a problem's tensors uploaded into a device backend's memory.
#include "convguard/device.h"

namespace convguard {

StatusOr<std::unique_ptr<DeviceTensorCopy>> DeviceTensorCopy::Upload(
    DeviceMemory& memory, const Problem& p, const ConvTensors<float>& host) {
  std::unique_ptr<DeviceTensorCopy> copy(new DeviceTensorCopy(memory, p));
  CG_ASSIGN_OR_RETURN(copy->tensors_.input, copy->Put(host.input, "the input"));
  CG_ASSIGN_OR_RETURN(copy->tensors_.weight, copy->Put(host.weight, "the weights"));
  CG_ASSIGN_OR_RETURN(copy->tensors_.output, copy->Put(host.output, "the output"));
  if (!host.bias.empty()) {
    CG_ASSIGN_OR_RETURN(copy->tensors_.bias, copy->Put(host.bias, "the bias"));
  }
  return copy;
}

DeviceTensorCopy::~DeviceTensorCopy() {
  for (void* block : blocks_) memory_.Free(block);
}

void* DeviceTensorCopy::result() const {
  switch (problem_.direction) {
    case Direction::kForward: return tensors_.output;
    case Direction::kBackwardData: return tensors_.input;
    case Direction::kBackwardWeights: return tensors_.weight;
  }
  return tensors_.output;
}

Status DeviceTensorCopy::Replace(void* device, const std::vector<float>& host) {
  return memory_.Upload(host, problem_.dtype, device);
}

Status DeviceTensorCopy::DownloadResult(std::vector<float>& host) const {
  return memory_.Download(result(), problem_.dtype, host);
}

StatusOr<void*> DeviceTensorCopy::Put(const std::vector<float>& host, const char* what) {
  CG_ASSIGN_OR_RETURN(
      void* block,
      memory_.Allocate(host.size() * static_cast<size_t>(DataTypeBytes(problem_.dtype)), what));
  blocks_.push_back(block);
  CG_RETURN_IF_ERROR(memory_.Upload(host, problem_.dtype, block));
  return block;
}

}  // namespace convguard
