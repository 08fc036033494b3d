package main

// JetStream: the shared stream (created by whoever comes first) and the durable explicit-ack
// consumer of `order.created`, as in reference_services/events.py. A handler error naks the
// message (redelivered after 1 s); the consume span of every delivery continues (or, in link
// mode, links to) the trace carried in the message headers.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

const (
	streamName      = "OBSCONF_EVENTS"
	requestIDHeader = "X-Request-ID"
)

var streamSubjects = []string{"user.created", "order.created"}

// Event is the payload every service publishes.
type Event struct {
	EventID    string          `json:"event_id"`
	Type       string          `json:"type"`
	OccurredAt string          `json:"occurred_at"`
	Data       json.RawMessage `json:"data"`
}

// Handler processes one event under its consume span's context.
type Handler func(ctx context.Context, event Event) error

// Bus is the NATS connection and the consumers started on it.
type Bus struct {
	nc        *nats.Conn
	js        jetstream.JetStream
	app       *App
	consuming []jetstream.ConsumeContext
}

func connectBus(ctx context.Context, app *App) (*Bus, error) {
	log := app.logger
	nc, err := nats.Connect(app.cfg.NatsURL,
		nats.Name(app.cfg.Service),
		nats.Timeout(2*time.Second),
		nats.ReconnectWait(500*time.Millisecond),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(*nats.Conn, error) {
			log.Warn(context.Background(), "events", "nats disconnected", nil)
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
			log.Info(context.Background(), "events", "nats reconnected", nil)
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn(context.Background(), "events", "nats error: "+err.Error(), nil)
		}),
	)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	bus := &Bus{nc: nc, js: js, app: app}
	if err := bus.ensureStream(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return bus, nil
}

func (b *Bus) Connected() bool { return b.nc.IsConnected() }

func (b *Bus) ensureStream(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := b.js.Stream(ctx, streamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = b.js.CreateStream(ctx, jetstream.StreamConfig{Name: streamName, Subjects: streamSubjects})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			err = nil // another service came first
		}
	}
	return err
}

// Consume runs handler on every message of subject (durable, explicit ack), in background.
func (b *Bus) Consume(ctx context.Context, subject, durable string, handler Handler) error {
	config := jetstream.ConsumerConfig{
		Durable:       durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       15 * time.Second,
		MaxDeliver:    50,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: subject,
	}
	setup, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	consumer, err := b.js.CreateOrUpdateConsumer(setup, streamName, config)
	if err != nil { // an existing durable another implementation made: use it as it is
		consumer, err = b.js.Consumer(setup, streamName, durable)
	}
	if err != nil {
		return fmt.Errorf("consumer %s: %w", durable, err)
	}
	consuming, err := consumer.Consume(func(msg jetstream.Msg) { b.handle(subject, msg, handler) },
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			b.app.logger.Warn(context.Background(), "events",
				fmt.Sprintf("fetch on %s failed: %v", subject, err), nil)
		}))
	if err != nil {
		return err
	}
	b.consuming = append(b.consuming, consuming)
	return nil
}

func (b *Bus) handle(subject string, msg jetstream.Msg, handler Handler) {
	app := b.app
	headers := msg.Headers()
	ctx := withRequestID(context.Background(), headers.Get(requestIDHeader))
	parent := ctx
	if !app.cfg.Faults.On("consumer-new-root") {
		parent = remoteContext(ctx, headers.Values("traceparent"), headers.Values("tracestate"))
	}
	options := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
	if app.cfg.Faults.On("wrong-consume-kind") {
		options[0] = trace.WithSpanKind(trace.SpanKindInternal)
	}
	if app.cfg.ConsumerRelation == "link" {
		if producer := trace.SpanContextFromContext(parent); producer.IsValid() {
			options = append(options, trace.WithLinks(trace.Link{SpanContext: producer}))
		}
		parent = ctx // a new trace, with a sampling decision of its own
	}
	options = append(options, trace.WithAttributes(messagingAttributes(app.cfg.Faults, subject)...))
	ctx, span := app.tracer.Start(parent, "process "+subject, options...)
	defer span.End()
	if meta, err := msg.Metadata(); err == nil {
		span.SetAttributes(attribute.Int64("messaging.nats.delivery_count", int64(meta.NumDelivered)))
	}
	var event Event
	if err := json.Unmarshal(msg.Data(), &event); err != nil || event.EventID == "" {
		span.SetStatus(codes.Error, "malformed event")
		app.logger.Error(ctx, "events", fmt.Sprintf("malformed event on %s dropped: %v", subject, err), nil)
		_ = msg.Term()
		return
	}
	span.SetAttributes(attribute.String("messaging.message.id", event.EventID))
	if err := handler(ctx, event); err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		app.logger.Error(ctx, "events", fmt.Sprintf("handling %s failed, will retry: %v", subject, err),
			Fields{"event_id": event.EventID})
		_ = msg.NakWithDelay(time.Second)
		return
	}
	if err := msg.Ack(); err != nil {
		app.logger.Warn(ctx, "events", "ack failed: "+err.Error(), Fields{"event_id": event.EventID})
		return
	}
	app.metrics.eventsConsumed.WithLabelValues(subject).Inc()
}

func messagingAttributes(faults Faults, subject string) []attribute.KeyValue {
	if faults.On("no-messaging-attrs") {
		return []attribute.KeyValue{attribute.String("messaging.operation", "process")}
	}
	return []attribute.KeyValue{
		attribute.String("messaging.system", "nats"),
		attribute.String("messaging.destination.name", subject),
		attribute.String("messaging.operation", "process"),
		attribute.String("messaging.operation.type", "process"),
	}
}

// Close stops the consumers and drains the connection.
func (b *Bus) Close() {
	for _, consuming := range b.consuming {
		consuming.Stop()
	}
	if err := b.nc.Drain(); err != nil {
		b.nc.Close()
	}
}
