// Package bench owns sockmux's benchmark harness: the systems compared
// (sockmux, and a plain relay chain with the same number of sockets as the
// physical limit), the servers and load they run, and the ratios reported.
// The benchmarks are in bench_test.go: go test -bench . ./bench/
package bench
