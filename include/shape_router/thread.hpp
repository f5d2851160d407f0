// Threads of the core's background builds. No PostgreSQL header may be included here.
#pragma once

#include <pthread.h>
#include <signal.h>

#include <system_error>
#include <thread>
#include <utility>

namespace shape_router {

// Starts f on a new thread with every signal blocked (the thread inherits the
// mask): the host's handlers (PostgreSQL's) then only ever run on the caller's
// thread. Returns false, with nothing started, when no thread can be had.
template <typename F>
bool start_thread(std::thread& thread, F&& f) {
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  bool started = true;
  try {
    thread = std::thread(std::forward<F>(f));
  } catch (const std::system_error&) {
    started = false;
  }
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return started;
}

}  // namespace shape_router
