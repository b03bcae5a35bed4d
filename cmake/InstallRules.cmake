# What `cmake --install` puts where; include()d by the top-level CMakeLists.txt once the
# CLI (convguard_cli) and the check library (convguard_check) exist.
#
# The installed tree is the one python/convguard/_native.py runs the command from:
#   bin/convguard                      the CLI
#   lib/libconvguard_check.so          the C API the PyTorch worker loads with ctypes
#   python/convguard_torch_worker.py   the worker's launcher script
#   python/convguard/                  the convguard package, beside the launcher (below)
# In a wheel build (`pip install .`: scikit-build-core sets SKBUILD) the install prefix is
# <site-packages>/convguard/_prefix (wheel.install-dir in pyproject.toml) and these
# folder names are fixed, because _native.py spells them. In a plain `cmake --install`
# bin and lib follow GNUInstallDirs and the Python files go to <datadir>/convguard/python.
#
# The worker's files are found through the environment: the binary's compiled-in paths
# name the source and build trees (src/capi/capi.cmake), and _native.py overrides them
# with CONVGUARD_PYTHON_DIR and CONVGUARD_CHECKLIB_PATH pointing into the prefix.
#
# Why the package is installed a second time, beside the launcher script: the launcher
# puts its own folder first on sys.path and imports convguard.worker from there (the
# worker must be the code the binary was built with). Under an interpreter that does not
# have this package installed (`--python /usr/bin/python3` from a virtual environment)
# the import would otherwise fail.
#
# RPATH: CMake replaces the build RPATH at install, which would lose libraries found
# outside the loader's default folders at build time: the CUDA runtime and cuDNN in the
# toolkit's folder or in a pip nvidia-cudnn package. INSTALL_RPATH_USE_LINK_PATH keeps
# every link folder outside the build tree (default system folders are left out by CMake).

if(SKBUILD)
  set(_cg_install_bindir bin)
  set(_cg_install_libdir lib)
  set(_cg_install_pythondir python)
else()
  include(GNUInstallDirs)
  set(_cg_install_bindir ${CMAKE_INSTALL_BINDIR})
  set(_cg_install_libdir ${CMAKE_INSTALL_LIBDIR})
  set(_cg_install_pythondir ${CMAKE_INSTALL_DATADIR}/convguard/python)
endif()

set_target_properties(convguard_cli convguard_check PROPERTIES INSTALL_RPATH_USE_LINK_PATH ON)

install(TARGETS convguard_cli RUNTIME DESTINATION ${_cg_install_bindir})
# The worker loads it by path (ctypes) and declares its functions itself: no headers.
install(TARGETS convguard_check LIBRARY DESTINATION ${_cg_install_libdir})
install(FILES ${PROJECT_SOURCE_DIR}/python/convguard_torch_worker.py
              DESTINATION ${_cg_install_pythondir})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/python/convguard
        DESTINATION ${_cg_install_pythondir}
        FILES_MATCHING PATTERN "*.py"
        PATTERN "__pycache__" EXCLUDE)

unset(_cg_install_bindir)
unset(_cg_install_libdir)
unset(_cg_install_pythondir)
