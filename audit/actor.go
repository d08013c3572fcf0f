package audit

import "context"

type actorKey struct{}

// WithActor returns ctx carrying who acts ("route:inbound",
// "officer:alice", "cli:root"), so code that audits deep in a call (token
// creation inside the token map) names the right actor.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom returns the actor of ctx, or "system".
func ActorFrom(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return "system"
}
