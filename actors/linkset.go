package actors

import (
	"sync"

	"github.com/asynkron/protoactor-go/actor"
)

// linkSet is the set of links that are up, newest last; a forward uses the
// newest.
type linkSet struct {
	mu       sync.Mutex
	pids     []*actor.PID
	strands  []*strand             // each link's, as pids
	watchers map[string]*actor.PID // Listeners waiting on links, by id
	up       map[string]bool       // the ids of pids
	env      *env
}

// add enters link p, whose actors run on st.
func (s *linkSet) add(p *actor.PID, st *strand) {
	s.mu.Lock()
	s.pids = append(s.pids, p)
	s.strands = append(s.strands, st)
	if s.up == nil {
		s.up = make(map[string]bool)
	}
	s.up[p.Id] = true
	for _, w := range s.watchers {
		s.env.send(w, &linkAvailable{})
	}
	s.mu.Unlock()
	s.env.poolLinkChanged(p) // with s.mu let go: pools.mu comes first
}

func (s *linkSet) watch(p *actor.PID) {
	s.mu.Lock()
	if s.watchers == nil {
		s.watchers = make(map[string]*actor.PID)
	}
	s.watchers[p.Id] = p
	s.mu.Unlock()
}

func (s *linkSet) unwatch(p *actor.PID) {
	s.mu.Lock()
	delete(s.watchers, p.Id)
	s.mu.Unlock()
}

func (s *linkSet) remove(p *actor.PID) {
	s.mu.Lock()
	for i, q := range s.pids {
		if q.Equal(p) {
			s.pids = append(s.pids[:i], s.pids[i+1:]...)
			s.strands = append(s.strands[:i], s.strands[i+1:]...)
			delete(s.up, p.Id)
			break
		}
	}
	s.mu.Unlock()
	s.env.poolLinkChanged(p)
}

// has reports whether link p is up (a link waiting to resume is not).
func (s *linkSet) has(p *actor.PID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up[p.Id]
}

func (s *linkSet) newest() *actor.PID {
	p, _ := s.newestOn()
	return p
}

// newestOn is the newest link and its strand.
func (s *linkSet) newestOn() (*actor.PID, *strand) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pids) == 0 {
		return nil, nil
	}
	return s.pids[len(s.pids)-1], s.strands[len(s.strands)-1]
}
