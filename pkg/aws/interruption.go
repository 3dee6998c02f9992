package aws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/nodewright/nodewright/pkg/cloud"
)

// DefaultInterruptionWait is how long Receive long-polls the queue by default.
const DefaultInterruptionWait = 10 * time.Second

// InterruptionQueueOptions configure an InterruptionQueue.
type InterruptionQueueOptions struct {
	// SQS is the SQS client. Required.
	SQS SQSAPI
	// QueueURL is the queue's URL; or else QueueName, whose URL is looked up once.
	QueueURL  string
	QueueName string
	// Wait is how long one Receive long-polls, at most 20s. Default DefaultInterruptionWait.
	Wait time.Duration
}

// InterruptionQueue reads the EventBridge events about EC2 instances that an SQS queue
// receives: spot interruption warnings, rebalance recommendations, AWS Health scheduled
// changes and instance state changes. It implements cloud.InterruptionQueue.
type InterruptionQueue struct {
	opts InterruptionQueueOptions

	mu  sync.Mutex
	url string
}

var _ cloud.InterruptionQueue = (*InterruptionQueue)(nil)

// NewInterruptionQueue returns the queue configured by opts; it makes no call.
func NewInterruptionQueue(opts InterruptionQueueOptions) (*InterruptionQueue, error) {
	if opts.SQS == nil {
		return nil, errors.New("the SQS client is required")
	}
	if opts.QueueURL == "" && opts.QueueName == "" {
		return nil, errors.New("the queue's URL or name is required")
	}
	if opts.Wait <= 0 {
		opts.Wait = DefaultInterruptionWait
	}
	opts.Wait = min(opts.Wait, 20*time.Second)
	return &InterruptionQueue{opts: opts, url: opts.QueueURL}, nil
}

func (q *InterruptionQueue) queueURL(ctx context.Context) (string, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.url != "" {
		return q.url, nil
	}
	out, err := q.opts.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: awssdk.String(q.opts.QueueName)})
	if err != nil {
		return "", fmt.Errorf("getting the URL of queue %s: %w", q.opts.QueueName, err)
	}
	q.url = awssdk.ToString(out.QueueUrl)
	return q.url, nil
}

// Receive implements cloud.InterruptionQueue.
func (q *InterruptionQueue) Receive(ctx context.Context) ([]cloud.InterruptionMessage, error) {
	url, err := q.queueURL(ctx)
	if err != nil {
		return nil, err
	}
	out, err := q.opts.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:            awssdk.String(url),
		MaxNumberOfMessages: 10,
		WaitTimeSeconds:     int32(q.opts.Wait / time.Second),
	})
	if err != nil {
		return nil, fmt.Errorf("receiving messages: %w", err)
	}
	msgs := make([]cloud.InterruptionMessage, 0, len(out.Messages))
	for _, m := range out.Messages {
		msg := parseEvent(awssdk.ToString(m.Body))
		msg.Handle = awssdk.ToString(m.ReceiptHandle)
		msgs = append(msgs, msg)
	}
	return msgs, nil
}

// Delete implements cloud.InterruptionQueue.
func (q *InterruptionQueue) Delete(ctx context.Context, msg cloud.InterruptionMessage) error {
	url, err := q.queueURL(ctx)
	if err != nil {
		return err
	}
	if _, err := q.opts.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: awssdk.String(url), ReceiptHandle: awssdk.String(msg.Handle)}); err != nil {
		return fmt.Errorf("deleting message: %w", err)
	}
	return nil
}

// EventBridge detail types of the events the queue receives.
const (
	detailTypeSpotInterruption = "EC2 Spot Instance Interruption Warning"
	detailTypeRebalance        = "EC2 Instance Rebalance Recommendation"
	detailTypeStateChange      = "EC2 Instance State-change Notification"
	detailTypeHealth           = "AWS Health Event"
)

// event is an EventBridge event, the fields the queue reads.
type event struct {
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Time       string          `json:"time"`
	Detail     json.RawMessage `json:"detail"`
}

type ec2Detail struct {
	InstanceID string `json:"instance-id"`
	State      string `json:"state"`
}

type healthDetail struct {
	Service           string `json:"service"`
	EventTypeCategory string `json:"eventTypeCategory"`
	AffectedEntities  []struct {
		EntityValue string `json:"entityValue"`
	} `json:"affectedEntities"`
}

// parseEvent turns a message body into an InterruptionMessage; anything it does not
// recognise is InterruptionUnknown.
func parseEvent(body string) cloud.InterruptionMessage {
	unknown := cloud.InterruptionMessage{Kind: cloud.InterruptionUnknown}
	var ev event
	if err := json.Unmarshal([]byte(body), &ev); err != nil {
		return unknown
	}
	t, _ := time.Parse(time.RFC3339, ev.Time)
	msg := cloud.InterruptionMessage{Time: t}
	switch ev.DetailType {
	case detailTypeSpotInterruption, detailTypeRebalance, detailTypeStateChange:
		var d ec2Detail
		if err := json.Unmarshal(ev.Detail, &d); err != nil || d.InstanceID == "" {
			return unknown
		}
		msg.InstanceIDs = []string{d.InstanceID}
		switch ev.DetailType {
		case detailTypeSpotInterruption:
			msg.Kind = cloud.InterruptionSpot
		case detailTypeRebalance:
			msg.Kind = cloud.InterruptionRebalance
		default:
			msg.Kind, msg.State = cloud.InterruptionStateChange, d.State
		}
	case detailTypeHealth:
		var d healthDetail
		if err := json.Unmarshal(ev.Detail, &d); err != nil || d.Service != "EC2" || d.EventTypeCategory != "scheduledChange" {
			return unknown
		}
		for _, e := range d.AffectedEntities {
			if e.EntityValue != "" {
				msg.InstanceIDs = append(msg.InstanceIDs, e.EntityValue)
			}
		}
		if len(msg.InstanceIDs) == 0 {
			return unknown
		}
		msg.Kind = cloud.InterruptionScheduledChange
	default:
		return unknown
	}
	return msg
}
