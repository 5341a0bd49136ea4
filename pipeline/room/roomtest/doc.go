// Package roomtest runs Go tests against a real livekit-server and a real
// agents-js voice agent, entirely inside a network namespace the test
// binary creates for itself.
//
// # Use
//
//	func TestMain(m *testing.M) { roomtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		gw := ...                                   // any Gateway: an inference backend
//		srv := roomtest.StartServer(t)               // livekit-server on 10.77.0.1
//		roomtest.StartAgent(t, srv, roomtest.InferenceEnv(gw))
//		// join srv.URL() with APIKey/APISecret as a user (server-sdk-go) ...
//	}
//
// Everything a helper starts is killed when the test ends; its log goes to a
// file in t.ArtifactDir() (kept with `go test -artifacts`) and its tail is
// printed when the test fails.
//
// # How it runs
//
// Main is three processes of the same test binary, told apart by the
// ROOMTEST_STAGE environment variable:
//
//  1. outer (the process `go test` starts): checks it is root, prepares the
//     dependencies that need the network (see below), then re-executes the
//     binary with the same arguments in new network, PID and mount
//     namespaces (clone flags; Pdeathsig SIGKILL, so killing `go test`
//     kills the namespace), forwards SIGINT/SIGTERM/SIGQUIT, waits, prints
//     one line with the wall time and the CPU of everything that ran inside,
//     and exits with the inner exit code.
//  2. init (PID 1 of the new PID namespace): makes mounts private, mounts a
//     fresh /proc, disables IPv6, brings lo up, creates the veth pair
//     vt0 10.77.0.1/24 <-> vt1 10.77.0.2/24 (both ends inside), checks that
//     lo/vt0/vt1 with 127.0.0.1, 10.77.0.1, 10.77.0.2 are the only
//     interfaces and addresses, then starts the binary once more as the test
//     process. It reaps every orphan (agent job processes end up here) and,
//     when the test process exits, SIGKILLs whatever is left and exits with
//     its status. When PID 1 exits the kernel kills the whole namespace.
//  3. test (a child of init): runs m.Run(). The helpers only work here.
//
// There is no route out of the namespace: the machine's interfaces and
// outside addresses are unreachable, and pion (livekit-server,
// server-sdk-go) can only gather 10.77.0.x host candidates.
//
// # Dependencies
//
// Prepared by the outer process, under a file lock, in the cache directory
// $VOICETUI_CACHE (default: os.UserCacheDir()/voicetui, i.e.
// $HOME/.cache/voicetui), and reused across runs:
//
//   - livekit-server/v1.13.5/server: `go install
//     github.com/livekit/livekit-server/cmd/server@v1.13.5` (about 2 minutes
//     and 1 GB RAM the first time; skipped when the binary's build info
//     says v1.13.5).
//   - the pinned agents-js from npm (pipelinetest/agentsjs: `npm ci`,
//     about 500 MB, 15-40 s the first time), with ./agent/agent.mjs
//     (embedded in this package) written beside its node_modules; it is
//     rewritten when it changed, so editing it needs no reinstall.
//
// Needs: root (CAP_SYS_ADMIN and CAP_NET_ADMIN), iproute2 (`ip`), Go (to
// build the server), Node.js >= 20 and npm, and network access to the Go
// module proxy and the npm registry on the first run only.
package roomtest
