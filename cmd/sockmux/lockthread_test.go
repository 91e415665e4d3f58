package main

import "runtime"

// runtimeLockOSThread locks the goroutine to its thread and never unlocks,
// so the runtime retires the thread when the goroutine ends.
func runtimeLockOSThread() { runtime.LockOSThread() }
