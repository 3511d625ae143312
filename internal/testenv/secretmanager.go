package testenv

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// SecretManager is a Secret Manager gRPC server in this process that
// answers AccessSecretVersion from a map of version names to payloads.
// No emulator of Secret Manager exists; the real client talks to this one
// over gRPC as it would to Google's.
type SecretManager struct {
	secretmanagerpb.UnimplementedSecretManagerServiceServer

	Addr string

	mu       sync.Mutex
	versions map[string]string
	calls    atomic.Int64
}

// MustSecretManager starts the server with these versions
// ("projects/P/secrets/S/versions/V" → payload) and stops it with the test.
func MustSecretManager(tb testing.TB, versions map[string]string) *SecretManager {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen for Secret Manager server: %v", err)
	}
	sm := &SecretManager{Addr: lis.Addr().String(), versions: versions}
	gs := grpc.NewServer()
	secretmanagerpb.RegisterSecretManagerServiceServer(gs, sm)
	go func() { _ = gs.Serve(lis) }()
	tb.Cleanup(gs.Stop)
	return sm
}

// ClientOptions returns the options that point a Secret Manager client at
// this server.
func (s *SecretManager) ClientOptions() []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(s.Addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

// Calls returns how many AccessSecretVersion calls the server answered.
func (s *SecretManager) Calls() int64 { return s.calls.Load() }

// AccessSecretVersion implements the Secret Manager RPC.
func (s *SecretManager) AccessSecretVersion(_ context.Context, req *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
	s.calls.Add(1)
	s.mu.Lock()
	payload, ok := s.versions[req.GetName()]
	s.mu.Unlock()
	if !ok {
		return nil, status.Errorf(codes.NotFound, "Secret Version [%s] not found or has no versions.", req.GetName())
	}
	return &secretmanagerpb.AccessSecretVersionResponse{
		Name:    req.GetName(),
		Payload: &secretmanagerpb.SecretPayload{Data: []byte(payload)},
	}, nil
}
