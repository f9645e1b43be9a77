// Exercises the generated Go client (sdk/generated/go, which scripts/sdk generates) against a live
// hex-core-service. The client has no dependencies beyond the standard library; go.sum stays empty
// until it gets one, and GOFLAGS=-mod=readonly makes any unpinned addition an error.
module codeberg.org/CE-RISE-software/hex-core/sdk/tests/go

go 1.23

require codeberg.org/CE-RISE-software/hex-core/sdk/go v0.0.0

replace codeberg.org/CE-RISE-software/hex-core/sdk/go => ../../generated/go
