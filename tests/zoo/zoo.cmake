# The model zoo at test time: scripts/make_zoo.py writes every model, with its weights,
# into ${CMAKE_BINARY_DIR}/zoo (about 180 MB; the small models are also committed in
# tests/inputs/zoo, see its README.md), then tests/zoo/check_zoo.py checks that each
# ONNX graph's convolutions are the ones PyTorch ran.
#
# Included from tests/CMakeLists.txt. Defines
#   Zoo.Generate              FIXTURES_SETUP zoo
#   Zoo.ShapesMatchTheExport  FIXTURES_REQUIRED zoo
#   CONVGUARD_ZOO_DIR         where the zoo is, for later tests: give them
#                             FIXTURES_REQUIRED zoo so that ctest generates it first.
#
# Both run under Debian's interpreter, the one python3-torch and python3-torchvision
# are installed for (CONVGUARD_ZOO_PYTHON, default /usr/bin/python3). Where it cannot
# import them, both scripts say why and exit 77, which ctest counts as a skip, not a
# failure: a machine without PyTorch still passes the suite.

set(CONVGUARD_ZOO_PYTHON /usr/bin/python3 CACHE FILEPATH
    "Interpreter with torch and torchvision that generates the model zoo (tests/zoo)")
set(CONVGUARD_ZOO_DIR ${CMAKE_BINARY_DIR}/zoo)
set(CONVGUARD_ZOO_SKIP 77)

if(EXISTS ${CONVGUARD_ZOO_PYTHON})
  set(zoo_generate ${CONVGUARD_ZOO_PYTHON} ${PROJECT_SOURCE_DIR}/scripts/make_zoo.py
      --out ${CONVGUARD_ZOO_DIR})
  set(zoo_check ${CONVGUARD_ZOO_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/check_zoo.py
      --zoo ${CONVGUARD_ZOO_DIR} --committed ${PROJECT_SOURCE_DIR}/tests/inputs/zoo)
else()
  # Without the interpreter ctest would fail with "Could not find executable"; skip
  # with the reason instead, like a missing torch.
  set(zoo_generate sh -c "echo 'skipped: no interpreter ${CONVGUARD_ZOO_PYTHON} \
(set CONVGUARD_ZOO_PYTHON)' >&2 && exit ${CONVGUARD_ZOO_SKIP}")
  set(zoo_check ${zoo_generate})
endif()

add_test(NAME Zoo.Generate COMMAND ${zoo_generate})
add_test(NAME Zoo.ShapesMatchTheExport COMMAND ${zoo_check})
set_tests_properties(Zoo.Generate PROPERTIES FIXTURES_SETUP zoo)
set_tests_properties(Zoo.ShapesMatchTheExport PROPERTIES FIXTURES_REQUIRED zoo)
# The generous timeout is for shared machines: the zoo takes about half a minute.
set_tests_properties(Zoo.Generate Zoo.ShapesMatchTheExport PROPERTIES
  LABELS integration SKIP_RETURN_CODE ${CONVGUARD_ZOO_SKIP} TIMEOUT 600)
