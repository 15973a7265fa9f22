// Package installtest checks that dist/install.yaml, the one-file installer
// written by `make build-installer`, applies cleanly to a real API server
// (envtest) with server-side apply, and that what it installs is coherent:
// the CRD is current and established, every binding points at a role and a
// service account it installs, the service account may do what the operator
// needs, and the operator's pod meets the Pod Security "restricted" level.
// It has only tests; see install_test.go.
package installtest
