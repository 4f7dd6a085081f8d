package bus

import "time"

// TickStatus is one tick in a SchedulerStatus.
type TickStatus struct {
	Name    string `json:"name"` // TickRecover or TickRetention
	Enabled bool   `json:"enabled"`
	// Schedule is human-readable, e.g. "every 1 h (UTC)" or "daily 00:00 Asia/Shanghai".
	Schedule string `json:"schedule,omitempty"`
	Subject  string `json:"subject"`
	// Last is the slot of the newest tick on GB_TICKS ("" when none yet) and
	// LastAt when it was emitted.
	Last   string    `json:"last"`
	LastAt time.Time `json:"last_at,omitzero"`
	// Next is when the next scheduled slot starts, NextSlot its id; both
	// absent when the tick is off.
	Next     time.Time `json:"next,omitzero"`
	NextSlot string    `json:"next_slot,omitempty"`
}

// SchedulerStatus is the reply of SubjectSchedulerStatus.
type SchedulerStatus struct {
	Replica string       `json:"replica,omitempty"`
	Ticks   []TickStatus `json:"ticks"`
}

// TickRunRequest asks SubjectSchedulerRun to emit one tick now.
type TickRunRequest struct {
	Name string `json:"name"`
}

// TickRunReply says which tick was stored, or why not.
type TickRunReply struct {
	Name    string `json:"name,omitempty"`
	Slot    string `json:"slot,omitempty"`
	MsgID   string `json:"msg_id,omitempty"`
	Subject string `json:"subject,omitempty"`
	// Error is TickUnknown for a bad name, else the publish failure.
	Error string `json:"error,omitempty"`
}

// TickUnknown is TickRunReply.Error for a name that is no tick.
const TickUnknown = "unknown tick"

// ManualSlotPrefix starts the slot of a tick emitted by SubjectSchedulerRun,
// so its Nats-Msg-Id never equals a scheduled slot's.
const ManualSlotPrefix = "manual-"
