# The public library: libctrain.so beside the static library (the same
# objects, built position-independent), and what `cmake --install` puts
# under the prefix: include/ctrain.h, lib/libctrain.{so,a}, the CMake
# package (find_package(ctrain) -> ctrain::ctrain) and lib/pkgconfig/ctrain.pc.
file(STRINGS core/ctrain.h CT_HEADER_VERSIONS REGEX "^#define CT_(ABI_VERSION|VERSION_STRING) ")
string(REGEX MATCH "CT_ABI_VERSION ([0-9]+)" _m "${CT_HEADER_VERSIONS}")
set(CT_ABI_VERSION ${CMAKE_MATCH_1})
string(REGEX MATCH "CT_VERSION_STRING \"([0-9.]+)\"" _m "${CT_HEADER_VERSIONS}")
if(NOT CMAKE_MATCH_1 STREQUAL PROJECT_VERSION)
  message(FATAL_ERROR "core/ctrain.h says version ${CMAKE_MATCH_1}, project() says ${PROJECT_VERSION}")
endif()
set_target_properties(ctrain_lib PROPERTIES POSITION_INDEPENDENT_CODE ON)
# protoc-c's generated code asserts on its own invariants; the library
# never aborts, so those checks are compiled out (tests/capi/never_exits.cmake).
set_source_files_properties(${CT_PROTO_SOURCES} PROPERTIES COMPILE_DEFINITIONS NDEBUG)

add_library(ctrain_shared SHARED $<TARGET_OBJECTS:ctrain_lib>)
get_target_property(CT_LIB_DEPS ctrain_lib LINK_LIBRARIES)
target_link_libraries(ctrain_shared PRIVATE ${CT_LIB_DEPS} ${CMAKE_DL_LIBS})
target_include_directories(ctrain_shared INTERFACE
  $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/core> $<INSTALL_INTERFACE:include>)
# Only ct_* is exported (the generated protobuf code and the rest stay inside).
set(CT_EXPORTS_MAP ${CMAKE_CURRENT_SOURCE_DIR}/cmake/ctrain.map)
target_link_options(ctrain_shared PRIVATE -Wl,--version-script=${CT_EXPORTS_MAP} -Wl,--no-undefined)
set_target_properties(ctrain_shared PROPERTIES
  OUTPUT_NAME ctrain EXPORT_NAME ctrain
  VERSION ${PROJECT_VERSION} SOVERSION ${CT_ABI_VERSION}
  LINK_DEPENDS ${CT_EXPORTS_MAP}
  INSTALL_RPATH_USE_LINK_PATH TRUE)   # OpenBLAS-OpenMP lives off the default path
set_target_properties(ctrain_lib PROPERTIES OUTPUT_NAME ctrain)
target_link_libraries(ctrain_lib PUBLIC ${CMAKE_DL_LIBS})
# Plugins loaded by the ctrain program resolve ct_* against the program:
# it exports its symbols and holds every object of the library, used by
# the launcher or not.
set_target_properties(ctrain PROPERTIES ENABLE_EXPORTS ON)
target_link_options(ctrain PRIVATE -Wl,--whole-archive $<TARGET_FILE:ctrain_lib> -Wl,--no-whole-archive)

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
install(FILES core/ctrain.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS ctrain_shared EXPORT ctrainTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS ctrain_lib ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS ctrain RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
set(CT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/ctrain)
install(EXPORT ctrainTargets NAMESPACE ctrain:: DESTINATION ${CT_CMAKE_DIR})
configure_package_config_file(cmake/ctrainConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/ctrainConfig.cmake
  INSTALL_DESTINATION ${CT_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/ctrainConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/ctrainConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/ctrainConfigVersion.cmake
  DESTINATION ${CT_CMAKE_DIR})
# pkg-config: the shared library by default; --static lists what libctrain.a needs.
set(CT_PC_PRIVATE "-L${CT_BLAS_HINT} -lopenblas")
foreach(lib ${MPI_C_LIBRARIES} ${HDF5_C_LIBRARIES})
  string(APPEND CT_PC_PRIVATE " ${lib}")
endforeach()
string(APPEND CT_PC_PRIVATE " -lprotobuf-c -lz -lpng -ljpeg -lm -lpthread ${CMAKE_DL_LIBS} ${OpenMP_C_FLAGS}")
configure_file(cmake/ctrain.pc.in ${CMAKE_CURRENT_BINARY_DIR}/ctrain.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/ctrain.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
