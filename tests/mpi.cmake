# Tests of dist/ under mpiexec (label mpi; included by tests/CMakeLists.txt).
# Each program in tests/mpi/ is built against ctrain_lib and started with
# 2, 3 and 4 ranks (--oversubscribe: this may be more ranks than cores):
#  - mpi_allreduce_npN: ring and fp16 allreduce against MPI_Allreduce and a
#    double-precision reference, bitwise agreement across ranks, broadcast,
#    double allreduce, barrier, argument errors; mpi_allreduce_np1 runs the
#    same program without mpiexec (a world of one, no MPI at all);
#  - mpi_timeout_<op>_npN: rank 1 stops taking part, rank 0 must get
#    CT_ERR_COMM naming the stalled operation (and rank 1 for the ring)
#    within the 2 s timeout. The program ends the job with MPI_Abort, so
#    success is read from its output, not from mpiexec's exit status;
#  - mpi_bench_comm (labels mpi, slow): the `ctrain bench-comm` table.
set(CT_MPI_SRC ${CMAKE_CURRENT_LIST_DIR}/mpi)
set(CT_MPIRUN ${MPIEXEC_EXECUTABLE} --allow-run-as-root --oversubscribe)
set(CT_MPI_ENV "OMP_NUM_THREADS=1")
if(CT_SANITIZE)
  # Open MPI leaks at MPI_Finalize; the leak report is noise here.
  list(APPEND CT_MPI_ENV "ASAN_OPTIONS=detect_leaks=0")
endif()

foreach(name test_allreduce test_comm_timeout bench_comm)
  add_executable(${name} ${CT_MPI_SRC}/${name}.c)
  target_link_libraries(${name} PRIVATE ctrain_lib)
  target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_LIST_DIR})
endforeach()

add_test(NAME mpi_allreduce_np1 COMMAND test_allreduce)
set_tests_properties(mpi_allreduce_np1 PROPERTIES LABELS mpi TIMEOUT 60 ENVIRONMENT "${CT_MPI_ENV}")

foreach(np 2 3 4)
  add_test(NAME mpi_allreduce_np${np} COMMAND ${CT_MPIRUN} -np ${np} $<TARGET_FILE:test_allreduce>)
  set_tests_properties(mpi_allreduce_np${np} PROPERTIES
    LABELS mpi TIMEOUT 120 PROCESSORS ${np} ENVIRONMENT "${CT_MPI_ENV}")
endforeach()

set(CT_TIMEOUT_CASES ring_np2 ring_np3 ring_np4 fp16_np3 bcast_np2 barrier_np3 f64_np2)
foreach(case ${CT_TIMEOUT_CASES})
  string(REGEX REPLACE "_np([0-9]+)$" "" op ${case})
  string(REGEX REPLACE "^.*_np" "" np ${case})
  add_test(NAME mpi_timeout_${case}
           COMMAND ${CT_MPIRUN} -np ${np} $<TARGET_FILE:test_comm_timeout> ${op})
  set_tests_properties(mpi_timeout_${case} PROPERTIES
    LABELS mpi TIMEOUT 60 PROCESSORS ${np} ENVIRONMENT "${CT_MPI_ENV}"
    PASS_REGULAR_EXPRESSION "test_comm_timeout ${op}: PASS"
    FAIL_REGULAR_EXPRESSION "test_comm_timeout ${op}: FAIL")
endforeach()

add_test(NAME mpi_bench_comm COMMAND ${CT_MPIRUN} -np 2 $<TARGET_FILE:bench_comm>)
set_tests_properties(mpi_bench_comm PROPERTIES
  LABELS "mpi;slow" TIMEOUT 300 PROCESSORS 2 ENVIRONMENT "${CT_MPI_ENV}"
  PASS_REGULAR_EXPRESSION "bench-comm: ring/mpi bus bandwidth at >= 1 MiB: min [0-9.]+, median [0-9.]+"
  FAIL_REGULAR_EXPRESSION "bench_comm: rank")
