# Benchmark programs (not CTest tests): include(tests/bench/bench.cmake).
#   bench_conv   convolution kernels vs OpenBLAS sgemm, 1 and 2 threads
add_executable(bench_conv ${CMAKE_CURRENT_LIST_DIR}/bench_conv.c)
target_link_libraries(bench_conv PRIVATE ctrain_lib)
add_executable(bench_augment ${CMAKE_CURRENT_LIST_DIR}/bench_augment.c)
target_link_libraries(bench_augment PRIVATE ctrain_lib)
#   bench_tape_dense  a tape-defined dense layer vs the built-in Dense (public API)
add_executable(bench_tape_dense ${CMAKE_CURRENT_LIST_DIR}/bench_tape_dense.c)
target_link_libraries(bench_tape_dense PRIVATE ctrain_lib)
