package ops

import "time"

// SetWSWriteTimeout shortens the bound on a WebSocket viewer's writes, so a
// test of the stuck-writer timer waits seconds, not wsWriteTimeout. Call it
// before the module serves.
func (m *Module) SetWSWriteTimeout(d time.Duration) { m.wsWriteTimeout = d }
