# The library never ends the process: libctrain.so must not reference
# exit, abort, MPI_Abort or assert's failure handler. cmake -DLIB=... -P
execute_process(COMMAND nm -D --undefined-only ${LIB} OUTPUT_VARIABLE undefined RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "nm ${LIB} failed")
endif()
foreach(sym exit _exit _Exit quick_exit abort MPI_Abort __assert_fail)
  if(undefined MATCHES "[ \n]U ${sym}(@|\n)")
    message(FATAL_ERROR "${LIB} calls ${sym}: the library must return statuses instead")
  endif()
endforeach()
message(STATUS "${LIB}: no exit, abort, MPI_Abort or assert")
