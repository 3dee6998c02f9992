package emulator

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// ControlPrefix is the path under which the emulator serves its control API: the fault
// injection and inspection methods of Emulator, over HTTP, for processes that do not embed the
// emulator (e.g. a user poking at `nodewright sandbox`). Requests and answers are JSON:
//
//	GET    /_emulator/instances                              []Instance
//	GET    /_emulator/launch-templates                       []LaunchTemplate
//	GET    /_emulator/calls                                  []Call
//	DELETE /_emulator/calls                                  ResetCalls
//	POST   /_emulator/faults/insufficient-capacity           {"instanceType","zone","capacityType"}
//	DELETE /_emulator/faults/insufficient-capacity           the same body: ClearInsufficientCapacity
//	POST   /_emulator/faults/throttle                        {"operation","count"}
//	POST   /_emulator/faults/latency                         {"operation","latency":"1.5s"}
//	POST   /_emulator/faults/never-join                      {"instanceIds":[...]} or {"next":n}
//	POST   /_emulator/spot-prices                            {"instanceType","zone","price"}
//	POST   /_emulator/instances/{id}/spot-interruption       InterruptSpot
//	POST   /_emulator/instances/{id}/rebalance-recommendation RebalanceRecommendation
//	POST   /_emulator/instances/{id}/scheduled-change        {"start":"2026-08-01T12:00:00Z"}
//	POST   /_emulator/instances/{id}/state-change            SendStateChangeNotification
//	POST   /_emulator/queues/{name}/messages                 the raw body becomes a message
//
// A successful POST or DELETE answers 204; errors answer 400 or 404 with {"error": "..."}.
const ControlPrefix = "/_emulator/"

type poolRequest struct {
	InstanceType string `json:"instanceType"`
	Zone         string `json:"zone"`
	CapacityType string `json:"capacityType"`
}

func (e *Emulator) registerControl(mux *http.ServeMux) {
	const p = ControlPrefix
	mux.HandleFunc("GET "+p+"instances", func(w http.ResponseWriter, r *http.Request) { writeControl(w, e.Instances()) })
	mux.HandleFunc("GET "+p+"launch-templates", func(w http.ResponseWriter, r *http.Request) { writeControl(w, e.LaunchTemplates()) })
	mux.HandleFunc("GET "+p+"calls", func(w http.ResponseWriter, r *http.Request) { writeControl(w, e.Calls()) })
	mux.HandleFunc("DELETE "+p+"calls", control(func(r *http.Request) error { e.ResetCalls(); return nil }))
	mux.HandleFunc("POST "+p+"faults/insufficient-capacity", control(func(r *http.Request) error {
		var req poolRequest
		if err := decodeControl(r, &req); err != nil {
			return err
		}
		e.InsufficientCapacity(req.InstanceType, req.Zone, req.CapacityType)
		return nil
	}))
	mux.HandleFunc("DELETE "+p+"faults/insufficient-capacity", control(func(r *http.Request) error {
		var req poolRequest
		if err := decodeControl(r, &req); err != nil {
			return err
		}
		e.ClearInsufficientCapacity(req.InstanceType, req.Zone, req.CapacityType)
		return nil
	}))
	mux.HandleFunc("POST "+p+"faults/throttle", control(func(r *http.Request) error {
		var req struct {
			Operation string `json:"operation"`
			Count     int    `json:"count"`
		}
		if err := decodeControl(r, &req); err != nil {
			return err
		}
		e.Throttle(req.Operation, req.Count)
		return nil
	}))
	mux.HandleFunc("POST "+p+"faults/fail", control(func(r *http.Request) error {
		var req struct {
			Operation string `json:"operation"`
			Code      string `json:"code"`
			Count     int    `json:"count"`
		}
		if err := decodeControl(r, &req); err != nil {
			return err
		}
		e.Fail(req.Operation, req.Code, req.Count)
		return nil
	}))
	mux.HandleFunc("POST "+p+"faults/latency", control(func(r *http.Request) error {
		var req struct {
			Operation string `json:"operation"`
			Latency   string `json:"latency"`
		}
		if err := decodeControl(r, &req); err != nil {
			return err
		}
		d, err := time.ParseDuration(req.Latency)
		if err != nil {
			return fmt.Errorf("parsing latency: %w", err)
		}
		e.SetLatency(req.Operation, d)
		return nil
	}))
	mux.HandleFunc("POST "+p+"faults/never-join", control(func(r *http.Request) error {
		var req struct {
			InstanceIDs []string `json:"instanceIds"`
			Next        int      `json:"next"`
		}
		if err := decodeControl(r, &req); err != nil {
			return err
		}
		if req.Next > 0 {
			e.NeverJoinNext(req.Next)
		}
		return e.NeverJoin(req.InstanceIDs...)
	}))
	mux.HandleFunc("POST "+p+"spot-prices", control(func(r *http.Request) error {
		var req struct {
			poolRequest
			Price float64 `json:"price"`
		}
		if err := decodeControl(r, &req); err != nil {
			return err
		}
		return e.SetSpotPrice(req.InstanceType, req.Zone, req.Price)
	}))
	mux.HandleFunc("POST "+p+"instances/{id}/spot-interruption", control(func(r *http.Request) error {
		return e.InterruptSpot(r.PathValue("id"))
	}))
	mux.HandleFunc("POST "+p+"instances/{id}/rebalance-recommendation", control(func(r *http.Request) error {
		return e.RebalanceRecommendation(r.PathValue("id"))
	}))
	mux.HandleFunc("POST "+p+"instances/{id}/scheduled-change", control(func(r *http.Request) error {
		var req struct {
			Start time.Time `json:"start"`
		}
		if err := decodeControl(r, &req); err != nil {
			return err
		}
		return e.ScheduledChange(r.PathValue("id"), req.Start)
	}))
	mux.HandleFunc("POST "+p+"instances/{id}/state-change", control(func(r *http.Request) error {
		return e.SendStateChangeNotification(r.PathValue("id"))
	}))
	mux.HandleFunc("POST "+p+"queues/{name}/messages", control(func(r *http.Request) error {
		body, err := io.ReadAll(io.LimitReader(r.Body, sqsMaxBodyBytes+1))
		if err != nil {
			return fmt.Errorf("reading the message: %w", err)
		}
		_, err = e.SendMessage(r.PathValue("name"), string(body))
		return err
	}))
	mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
		writeControlError(w, http.StatusNotFound, fmt.Errorf("no control endpoint %s %s", r.Method, r.URL.Path))
	})
}

// control adapts an action to a handler: 204 on success, 400 with the error otherwise.
func control(action func(r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := action(r); err != nil {
			writeControlError(w, http.StatusBadRequest, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func decodeControl(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decoding the request: %w", err)
	}
	return nil
}

func writeControl(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeControlError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}
