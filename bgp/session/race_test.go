//go:build race

package session

// raceEnabled: the race detector multiplies memory, so memory limits are
// not checked under it.
const raceEnabled = true
