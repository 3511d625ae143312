package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// helperEnv, when set in the environment of this test binary, makes it
// start an emulator, print its address and then do what the value says
// instead of running tests: "block" until killed, or "stop" (call Stop and
// exit).
const helperEnv = "TESTENV_EMULATOR_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	defer Stop()
	m.Run()
}

// runHelper starts an emulator, prints "addr=HOST:PORT" and then blocks or
// calls Stop, as mode says.
func runHelper(mode string) int {
	os.Unsetenv(EnvFirestoreHost)
	addr, err := emulatorHost()
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Printf("addr=%s\n", addr)
	switch mode {
	case "block":
		select {}
	case "stop":
		Stop()
		return 0
	}
	return 2
}

func TestFirestore(t *testing.T) {
	client := Firestore(t)
	ctx := t.Context()

	doc := client.Collection(UniqueName(t, "testenv")).Doc("d")
	if _, err := doc.Set(ctx, map[string]any{"n": 42}); err != nil {
		t.Fatalf("Set: %v", err)
	}
	snap, err := doc.Get(ctx)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got, want := snap.Data()["n"], int64(42); got != want {
		t.Errorf("got n = %v, want %v", got, want)
	}
	if got := os.Getenv(EnvFirestoreHost); got == "" {
		t.Errorf("got %s empty, want the emulator's address", EnvFirestoreHost)
	}
}

func TestUniqueName(t *testing.T) {
	valid := regexp.MustCompile(`^state-[A-Za-z0-9_-]+$`)
	seen := make(map[string]bool)
	for range 100 {
		name := UniqueName(t, "state")
		if !valid.MatchString(name) {
			t.Fatalf("got %q, want a match for %s", name, valid)
		}
		if seen[name] {
			t.Fatalf("got %q twice", name)
		}
		seen[name] = true
	}
}

// TestEmulatorDies checks that an emulator started by a test binary dies
// with it: when the binary calls Stop, and when it is killed without any
// chance to clean up.
func TestEmulatorDies(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two more emulators; skipped with -short")
	}
	if _, err := exec.LookPath("gcloud"); err != nil && os.Getenv(EnvFirestoreHost) != "" {
		t.Skipf("gcloud is not on PATH, so this binary cannot start an emulator of its own; "+
			"the other tests use %s=%s", EnvFirestoreHost, os.Getenv(EnvFirestoreHost))
	}

	tests := []struct {
		name string
		mode string
	}{
		{name: "Stop", mode: "stop"},
		{name: "Killed", mode: "block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"="+tt.mode)
			cmd.Stderr = os.Stderr
			addr := MustStartHelper(t, cmd)

			// The emulator answers while the helper runs (unless it
			// already called Stop); then the helper ends.
			if tt.mode == "block" {
				if err := waitReady(addr, 5*time.Second, nil); err != nil {
					t.Fatalf("emulator at %s while the helper runs: %v", addr, err)
				}
				cmd.Process.Kill()
			}
			cmd.Wait()

			// The emulator is gone soon after.
			if err := waitGone(addr, 15*time.Second); err != nil {
				t.Errorf("emulator at %s after the helper ended: %v", addr, err)
			}
		})
	}
}

// MustStartHelper starts cmd, a helper run of this binary, and returns the
// emulator address it prints. The helper is killed when tb ends.
func MustStartHelper(tb testing.TB, cmd *exec.Cmd) string {
	tb.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatalf("StdoutPipe: %v", err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start helper: %v", err)
	}
	tb.Cleanup(func() { cmd.Process.Kill() })

	lines := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	select {
	case line := <-lines:
		addr, ok := strings.CutPrefix(line, "addr=")
		if !ok {
			tb.Fatalf("helper printed %q, want addr=HOST:PORT", line)
		}
		return addr
	case <-time.After(StartTimeout + 30*time.Second):
		tb.Fatalf("helper printed no address within %s", StartTimeout+30*time.Second)
	}
	return ""
}

// waitGone waits until nothing accepts connections at addr, for at most
// timeout.
func waitGone(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return nil
		}
		conn.Close()
		if time.Now().After(deadline) {
			return errors.New("still accepts connections")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
