package sentinel

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNotMaster is the verdict of checkMaster on a server whose ROLE is not
// "master", such as a replica a Sentinel still names during a failover.
var ErrNotMaster = errors.New("not a master")

// checkMaster connects to the server at addr and asks its ROLE, after AUTH
// with auth when it is set, as twemproxy-163 checks a master before serving
// it. It returns nil only if the first element of the ROLE reply is
// "master". The dial and the replies each have timeout.
//
// A failed AUTH alone does not fail the check, as it does not fail the
// proxy's own backend connections (internal/proxy logs it and carries on):
// what matters is whether ROLE is answered. A server that requires a
// password we do not have answers ROLE with NOAUTH, and the error names both.
func checkMaster(ctx context.Context, addr, auth string, timeout time.Duration) error {
	c, err := dial(ctx, addr, timeout)
	if err != nil {
		return err
	}
	defer c.close()
	if auth != "" {
		c.send("AUTH", auth)
	}
	c.send("ROLE")
	if err := c.flush(); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	var authErr error
	if auth != "" {
		r, err := c.read(deadline)
		if err != nil {
			return err
		}
		authErr = replyError(r)
	}
	r, err := c.read(deadline)
	if err != nil {
		return err
	}
	role, err := parseRole(r)
	switch {
	case err != nil && authErr != nil:
		return fmt.Errorf("AUTH: %w; ROLE: %w", authErr, err)
	case err != nil:
		return fmt.Errorf("ROLE: %w", err)
	case role != "master":
		return fmt.Errorf("%w: ROLE says %q", ErrNotMaster, role)
	}
	return nil
}
