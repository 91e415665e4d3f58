package cluster

// protoactor's remote indexes what a peer sends without checking it (a
// message batch's type, target and serializer numbers), so a malformed
// batch panics in the gRPC handler that reads it; unrecovered, that ends
// the hub. The control plane's handlers run behind these interceptors:
// a panic ends that peer's stream with an error, logged, and nothing else.

import (
	"context"
	"fmt"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// recovering returns the server options that turn a handler's panic into
// the error of that call alone.
func recovering(log *slog.Logger) []grpc.ServerOption {
	caught := func(method string, err *error) {
		if p := recover(); p != nil {
			log.Warn("control-plane peer sent what the remote cannot read; its stream is closed",
				"method", method, "err", fmt.Errorf("%w: %v", ErrMalformed, p))
			*err = status.Errorf(codes.InvalidArgument, "malformed message")
		}
	}
	return []grpc.ServerOption{
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
			defer caught(info.FullMethod, &err)
			return h(srv, ss)
		}),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
			defer caught(info.FullMethod, &err)
			return h(ctx, req)
		}),
	}
}
