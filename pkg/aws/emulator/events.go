package emulator

import (
	"encoding/json"
	"fmt"
	"time"
)

// EventBridge detail types and sources of the events the emulator puts on the queue.
const (
	DetailTypeSpotInterruption = "EC2 Spot Instance Interruption Warning"
	DetailTypeRebalance        = "EC2 Instance Rebalance Recommendation"
	DetailTypeStateChange      = "EC2 Instance State-change Notification"
	DetailTypeHealth           = "AWS Health Event"
)

// event is an EventBridge event as an SQS target receives it.
type event struct {
	Version    string   `json:"version"`
	ID         string   `json:"id"`
	DetailType string   `json:"detail-type"`
	Source     string   `json:"source"`
	Account    string   `json:"account"`
	Time       string   `json:"time"`
	Region     string   `json:"region"`
	Resources  []string `json:"resources"`
	Detail     any      `json:"detail"`
}

// eventQueue is the queue events go to: the first of Options.Queues.
func (e *Emulator) eventQueue() *queue {
	return e.state.queues[e.state.queueOrder[0]]
}

// publish puts an event about inst on the event queue. Callers hold e.mu.
func (e *Emulator) publish(detailType, source string, resources []string, detail any) error {
	ev := event{Version: "0", ID: e.uuid(), DetailType: detailType, Source: source, Account: AccountID,
		Time: e.now().UTC().Format(time.RFC3339), Region: Region, Resources: resources, Detail: detail}
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encoding the %s event: %w", detailType, err)
	}
	e.enqueue(e.eventQueue(), string(body), nil, 0)
	return nil
}

// liveSpotInstance is liveInstance for an instance that must be a spot instance. Callers
// hold e.mu.
func (e *Emulator) liveSpotInstance(id string) (*instance, error) {
	inst, err := e.liveInstance(id)
	if err != nil {
		return nil, err
	}
	if inst.CapacityType != CapacityTypeSpot {
		return nil, fmt.Errorf("instance %s is not a spot instance", id)
	}
	return inst, nil
}

// liveInstance returns an instance that is not terminated yet. Callers hold e.mu.
func (e *Emulator) liveInstance(id string) (*instance, error) {
	now := e.now()
	e.state.visibleInstances(now, e.opts)
	inst, ok := e.state.instances[id]
	if !ok {
		return nil, fmt.Errorf("no instance %s", id)
	}
	if st := inst.state(now, e.opts); st == StateShuttingDown || st == StateTerminated {
		return nil, fmt.Errorf("instance %s is %s", id, st)
	}
	return inst, nil
}

// spotEventARN is the resource ARN spot interruption and rebalance events name an instance by:
// with its zone and without the account, as EC2 sends them.
func spotEventARN(inst *instance) string {
	return "arn:aws:ec2:" + inst.Zone + ":instance/" + inst.ID
}

// InterruptSpot reclaims a spot instance: it puts an "EC2 Spot Instance Interruption Warning"
// event (instance-action terminate) on the event queue now, and the instance starts shutting
// down after Options.SpotInterruptionNotice, then terminates.
func (e *Emulator) InterruptSpot(instanceID string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	inst, err := e.liveSpotInstance(instanceID)
	if err != nil {
		return err
	}
	detail := map[string]string{"instance-id": inst.ID, "instance-action": "terminate"}
	if err := e.publish(DetailTypeSpotInterruption, "aws.ec2", []string{spotEventARN(inst)}, detail); err != nil {
		return err
	}
	inst.interrupted = true
	inst.terminate(e.now().Add(e.opts.SpotInterruptionNotice), "Server.SpotInstanceTermination: Spot instance termination")
	return nil
}

// RebalanceRecommendation puts an "EC2 Instance Rebalance Recommendation" event about a spot
// instance on the event queue. The instance keeps running.
func (e *Emulator) RebalanceRecommendation(instanceID string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	inst, err := e.liveSpotInstance(instanceID)
	if err != nil {
		return err
	}
	return e.publish(DetailTypeRebalance, "aws.ec2", []string{spotEventARN(inst)}, map[string]string{"instance-id": inst.ID})
}

// ScheduledChange puts an AWS Health "scheduledChange" event on the event queue: the
// instance's retirement (AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED) in the window [start,
// start+1h]. The instance keeps running; the emulator does not retire it.
func (e *Emulator) ScheduledChange(instanceID string, start time.Time) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	inst, err := e.liveInstance(instanceID)
	if err != nil {
		return err
	}
	const code = "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED"
	detail := map[string]any{
		"eventArn":          "arn:aws:health:" + Region + "::event/EC2/" + code + "/" + code + "_" + e.newID(""),
		"service":           "EC2",
		"eventTypeCode":     code,
		"eventTypeCategory": "scheduledChange",
		"startTime":         start.UTC().Format(time.RFC1123),
		"endTime":           start.Add(time.Hour).UTC().Format(time.RFC1123),
		"eventDescription": []map[string]string{{
			"language":          "en_US",
			"latestDescription": "EC2 has detected degradation of the underlying hardware hosting your Amazon EC2 instance associated with this event. The instance is scheduled for retirement.",
		}},
		"affectedEntities": []map[string]string{{"entityValue": inst.ID}},
	}
	return e.publish(DetailTypeHealth, "aws.health", []string{inst.ID}, detail)
}

// SendStateChangeNotification puts an "EC2 Instance State-change Notification" event with the
// instance's current state on the event queue, as EventBridge does on each transition. The
// emulator does not send these by itself.
func (e *Emulator) SendStateChangeNotification(instanceID string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	inst, ok := e.state.instances[instanceID]
	if !ok {
		return fmt.Errorf("no instance %s", instanceID)
	}
	detail := map[string]string{"instance-id": inst.ID, "state": inst.state(e.now(), e.opts)}
	arn := "arn:aws:ec2:" + Region + ":" + AccountID + ":instance/" + inst.ID
	return e.publish(DetailTypeStateChange, "aws.ec2", []string{arn}, detail)
}
