// Package testenv gives tests the services that run on this machine. For
// now that is the Firestore emulator: Firestore connects to the emulator
// FIRESTORE_EMULATOR_HOST names or, when it is unset, starts one for the
// test binary. It never skips: a test that needs the emulator fails loudly
// when there is none.
//
// A package whose tests call Firestore should stop the emulator it may have
// started when its tests end:
//
//	func TestMain(m *testing.M) {
//		defer testenv.Stop()
//		m.Run()
//	}
//
// Without Stop the emulator still dies with the test binary (see Firestore),
// but only once the binary has exited. The code is for unix systems.
package testenv

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
)

// ProjectID is the project id of the clients Firestore returns.
const ProjectID = "test-project"

// EnvFirestoreHost names the environment variable that holds the emulator's
// host:port, as the Firestore client library reads it.
const EnvFirestoreHost = "FIRESTORE_EMULATOR_HOST"

// StartTimeout bounds how long Firestore waits for an emulator it started
// to answer. The emulator is a Java program and takes a few seconds.
const StartTimeout = 60 * time.Second

var (
	startOnce sync.Once

	mu       sync.Mutex
	host     string    // the emulator's host:port, once started or found
	preset   string    // FIRESTORE_EMULATOR_HOST before the first call
	hostErr  error     // why there is no emulator
	running  *emulator // the emulator this process started, if any
	stopped  bool      // Stop was called
	sequence atomic.Int64
)

// Firestore returns a client on project ProjectID of the Firestore emulator,
// closed when tb ends. It uses the emulator at FIRESTORE_EMULATOR_HOST if
// that is set. Otherwise the first call starts one for the whole test binary
// with
//
//	gcloud emulators firestore start --host-port=127.0.0.1:PORT --quiet
//
// on a free port, waits up to StartTimeout for it to answer, and sets
// FIRESTORE_EMULATOR_HOST for the rest of the process. The emulator runs in
// its own process group with a watchdog that kills the group as soon as the
// test binary exits, however it exits; Stop kills it earlier.
//
// The emulator keeps its data for as long as it runs, and tests share it:
// each test must use collections of its own (see UniqueName).
//
// When no emulator can be found or started, Firestore fails tb, never skips.
func Firestore(tb testing.TB) *firestore.Client {
	tb.Helper()
	if _, err := emulatorHost(); err != nil {
		tb.Fatal(noEmulator(err))
	}
	client, err := firestore.NewClient(context.Background(), ProjectID)
	if err != nil {
		tb.Fatalf("testenv: firestore.NewClient: %v", err)
	}
	tb.Cleanup(func() { client.Close() })
	return client
}

// noEmulator returns the message for a test that finds no emulator: why,
// and how to get one.
func noEmulator(err error) string {
	var b strings.Builder
	if os.Getenv("CI") == "true" {
		b.WriteString("CI=true: the Firestore tests must run in CI, but there is no emulator.\n")
	}
	fmt.Fprintf(&b, "testenv: no Firestore emulator: %v\n", err)
	mu.Lock()
	h := preset
	mu.Unlock()
	if h != "" {
		fmt.Fprintf(&b, "\t%s=%s: start the emulator there, or unset the variable "+
			"and the tests start one themselves.", EnvFirestoreHost, h)
		return b.String()
	}
	fmt.Fprintf(&b, "\t%s is not set, so the tests start an emulator with\n"+
		"\t\tgcloud emulators firestore start --host-port=127.0.0.1:PORT --quiet\n"+
		"\twhich needs gcloud on PATH, its cloud-firestore-emulator component "+
		"(gcloud components install cloud-firestore-emulator) and Java 11 or later.\n"+
		"\tOr start an emulator yourself and export %s=127.0.0.1:PORT.",
		EnvFirestoreHost, EnvFirestoreHost)
	return b.String()
}

// UniqueName returns a name that starts with prefix and that no other test,
// in this process or another, gets: use it for a test's Firestore
// collections. It holds only letters, digits, '-' and '_', and names tb's
// test to help find its data.
func UniqueName(tb testing.TB, prefix string) string {
	tb.Helper()
	var r [4]byte
	rand.Read(r[:])
	name := []byte(tb.Name())
	for i, c := range name {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			name[i] = '_'
		}
	}
	if len(name) > 60 {
		name = name[:60]
	}
	return fmt.Sprintf("%s-%s-%d-%x", prefix, name, sequence.Add(1), r)
}

// Stop kills the emulator that Firestore started, if any, with its whole
// process group, and waits for it to exit. Firestore fails after Stop.
func Stop() {
	startOnce.Do(func() {}) // a Firestore call after Stop starts nothing

	mu.Lock()
	defer mu.Unlock()
	stopped = true
	if running != nil {
		running.stop()
		running = nil
	}
}

// emulatorHost returns the emulator's host:port, finding or starting it on
// the first call.
func emulatorHost() (string, error) {
	startOnce.Do(func() {
		p := os.Getenv(EnvFirestoreHost)
		h, e, err := findOrStart()
		mu.Lock()
		defer mu.Unlock()
		preset, host, running, hostErr = p, h, e, err
	})

	mu.Lock()
	defer mu.Unlock()
	if stopped {
		return "", errors.New("testenv.Stop was called")
	}
	return host, hostErr
}

// findOrStart returns the emulator at FIRESTORE_EMULATOR_HOST if that is
// set, or else starts one and sets the variable.
func findOrStart() (string, *emulator, error) {
	if h := os.Getenv(EnvFirestoreHost); h != "" {
		if err := waitReady(h, 10*time.Second, nil); err != nil {
			return "", nil, fmt.Errorf("%s=%s does not answer: %w", EnvFirestoreHost, h, err)
		}
		return h, nil, nil
	}
	e, err := startEmulator()
	if err != nil {
		return "", nil, err
	}
	if err := os.Setenv(EnvFirestoreHost, e.addr); err != nil {
		e.stop()
		return "", nil, fmt.Errorf("set %s: %w", EnvFirestoreHost, err)
	}
	return e.addr, e, nil
}

// emulator is a Firestore emulator this process started.
type emulator struct {
	addr   string
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has exited
	guard  *os.File      // write end of the watchdog's pipe; closed at exit
	log    *os.File      // the emulator's output, already unlinked
}

// watchdogScript runs gcloud ($0) with the emulator's address ($1). Before
// it execs gcloud it starts a watchdog in the same process group that blocks
// reading fd 3, the read end of a pipe whose only write end the test binary
// holds. When the binary exits, however it exits, the kernel closes that
// end, the read returns, and the watchdog kills the process group: gcloud,
// the emulator's shell wrapper, its Java process and the watchdog itself.
const watchdogScript = `{ read -r x <&3; kill -9 0; } &
exec "$0" emulators firestore start --host-port="$1" --quiet 3<&-`

// startEmulator starts an emulator on a free port and waits until it
// answers.
func startEmulator() (*emulator, error) {
	gcloud, err := exec.LookPath("gcloud")
	if err != nil {
		return nil, fmt.Errorf("find gcloud: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	// The pipe the watchdog reads and a file for the emulator's output,
	// unlinked at once so that nothing is left behind.
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create watchdog pipe: %w", err)
	}
	defer r.Close()
	logFile, err := os.CreateTemp("", "firestore-emulator-*.log")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("create emulator log: %w", err)
	}
	os.Remove(logFile.Name())

	// Start it in a process group of its own.
	cmd := exec.Command("/bin/sh", "-c", watchdogScript, gcloud, addr)
	cmd.Env = append(os.Environ(), "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=true")
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.ExtraFiles = []*os.File{r}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		logFile.Close()
		return nil, fmt.Errorf("start gcloud emulators firestore start: %w", err)
	}
	e := &emulator{addr: addr, cmd: cmd, exited: make(chan struct{}), guard: w, log: logFile}
	go func() {
		cmd.Wait()
		close(e.exited)
	}()

	// Wait until it answers.
	if err := waitReady(addr, StartTimeout, e.exited); err != nil {
		out := e.output()
		e.stop()
		return nil, fmt.Errorf("gcloud emulators firestore start --host-port=%s: %w; its output ends with:\n%s",
			addr, err, out)
	}
	return e, nil
}

// stop kills the emulator's process group and waits for gcloud to exit.
func (e *emulator) stop() {
	syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-e.exited:
	case <-time.After(10 * time.Second):
	}
	e.guard.Close()
	e.log.Close()
}

// output returns the last few kilobytes the emulator wrote.
func (e *emulator) output() string {
	const tail = 4 << 10
	fi, err := e.log.Stat()
	if err != nil {
		return fmt.Sprintf("(read emulator output: %v)", err)
	}
	off := max(0, fi.Size()-tail)
	buf := make([]byte, fi.Size()-off)
	n, _ := e.log.ReadAt(buf, off)
	return strings.TrimSpace(string(buf[:n]))
}

// waitReady waits until the emulator at addr answers its health check (GET
// / is 200 "Ok"), for at most timeout, or until exited is closed.
func waitReady(addr string, timeout time.Duration, exited <-chan struct{}) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get("http://" + addr + "/")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /: %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer within %s: %w", timeout, err)
		}
		select {
		case <-exited:
			return errors.New("the emulator exited before it answered")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
