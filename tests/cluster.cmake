# Cluster behaviour through the command line (tests/cluster.sh): signals
# (label unit; mpi_signal under mpirun), resumes on another rank count and
# after a failure inside an epoch, EarlyStopping on several ranks, and the
# [distributed] options in real training (label mpi). About 40 s in all.
foreach(case signal mpi_signal mpi_ranks mpi_uneven_resume mpi_early_stopping mpi_heartbeat mpi_options)
  add_test(NAME cluster_${case} COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/cluster.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR} ${case})
  if(case STREQUAL "signal")
    set_tests_properties(cluster_${case} PROPERTIES LABELS unit TIMEOUT 300)
  else()
    set_tests_properties(cluster_${case} PROPERTIES LABELS mpi TIMEOUT 300 PROCESSORS 2)
  endif()
endforeach()

# Two hosts in network namespaces (tests/netns.sh; root only, SKIPPED
# otherwise): a cut link and a killed rank end a 2-rank job over TCP within
# 60 s, on the ring and with allreduce = mpi. About 25 s each.
foreach(case "cut ring" "cut mpi" "kill ring")
  string(REPLACE " " "_" name "netns_${case}")
  separate_arguments(args UNIX_COMMAND "${case}")
  add_test(NAME ${name} COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/netns.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR} ${args})
  set_tests_properties(${name} PROPERTIES LABELS mpi TIMEOUT 300 PROCESSORS 2 RUN_SERIAL ON)
endforeach()

# A single-node Slurm cluster of its own runs examples/slurm/cifar.sbatch,
# preempted twice and requeued (tests/slurm.sh; root and slurm-wlm, munge
# from launcher/setup.sh --test; SKIPPED otherwise). About 2 minutes.
add_test(NAME slurm_requeue COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/slurm.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR})
set_tests_properties(slurm_requeue PROPERTIES LABELS "slurm;mpi" TIMEOUT 900 PROCESSORS 2 RUN_SERIAL ON
  PASS_REGULAR_EXPRESSION "[0-9]+ passed, 0 failed|SKIPPED")
