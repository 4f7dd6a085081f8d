package server

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/admind/busclient"
	"github.com/gemini-balance-go/shared/bus"
)

// Scheduler routes: schedulerd answers them over NATS. A missing schedulerd
// is a 503 that names it (busclient.UnavailableError).
func (s *Server) schedulerRoutes(g *gin.RouterGroup) {
	sched := &scheduler{backends: &backends{s: s}, sd: busclient.New(s.d.NC, bus.ServiceSchedulerd, backendTimeout)}
	g.GET("/scheduler", sched.schedulerStatus)
	g.POST("/scheduler/:name/run", sched.runTick)
}

// scheduler calls schedulerd; fail comes from backends.
type scheduler struct {
	*backends
	sd *busclient.Client
}

func (b *scheduler) schedulerStatus(c *gin.Context) {
	var st bus.SchedulerStatus
	if err := b.sd.Call(c.Request.Context(), bus.SubjectSchedulerStatus, struct{}{}, &st); err != nil {
		b.fail(c, err)
		return
	}
	if st.Ticks == nil {
		st.Ticks = []bus.TickStatus{}
	}
	c.JSON(http.StatusOK, st)
}

func (b *scheduler) runTick(c *gin.Context) {
	name := c.Param("name")
	if name != bus.TickRecover && name != bus.TickRetention {
		c.JSON(http.StatusNotFound, gin.H{"error": "unknown tick " + name + ": want recover or retention"})
		return
	}
	var rep bus.TickRunReply
	if err := b.sd.Call(c.Request.Context(), bus.SubjectSchedulerRun, bus.TickRunRequest{Name: name}, &rep); err != nil {
		b.fail(c, err)
		return
	}
	switch {
	case rep.Error == bus.TickUnknown:
		c.JSON(http.StatusNotFound, gin.H{"error": "unknown tick " + name})
	case rep.Error != "":
		c.JSON(http.StatusServiceUnavailable, gin.H{"error": "schedulerd could not publish the tick: " + rep.Error})
	default:
		b.s.d.Log.Info("tick run by admin", "tick", name, "slot", rep.Slot)
		c.JSON(http.StatusAccepted, rep)
	}
}
