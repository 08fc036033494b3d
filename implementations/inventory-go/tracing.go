package main

import (
	"context"
	"encoding/hex"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

const tracerName = "inventory-go"

// setupTracing returns a tracer provider exporting over OTLP/HTTP to
// <endpoint>/v1/traces, batching at OTEL_BSP_SCHEDULE_DELAY (read by the SDK), or a no-op
// provider when telemetry is off. The sampler follows the incoming sampled flag.
func setupTracing(cfg Config, logger *Logger) (trace.TracerProvider, func(context.Context) error, error) {
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn(context.Background(), "otel", "opentelemetry: "+err.Error(), nil)
	}))
	if !cfg.Telemetry {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	exporter, err := otlptracehttp.New(context.Background(),
		otlptracehttp.WithEndpointURL(cfg.OTLPEndpoint+"/v1/traces"),
		otlptracehttp.WithTimeout(5*time.Second))
	if err != nil {
		return nil, nil, err
	}
	attrs := []attribute.KeyValue{
		attribute.String("telemetry.sdk.language", "go"),
		attribute.String("telemetry.sdk.name", "opentelemetry"),
	}
	if !cfg.Faults.On("no-service-name") {
		attrs = append(attrs, attribute.String("service.name", cfg.Service))
	}
	provider := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exporter),
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
	)
	return provider, provider.Shutdown, nil
}

// --- W3C Trace Context (https://www.w3.org/TR/trace-context-1/) ------------------------------

// remoteContext is the context carried by traceparent/tracestate fields (HTTP header values
// or NATS header values, each a list): invalid or duplicated traceparent -> no parent.
func remoteContext(ctx context.Context, traceparents, tracestates []string) context.Context {
	if len(traceparents) != 1 {
		return ctx // none, or two fields: the header is not a list, so no valid parent
	}
	sc, ok := parseTraceparent(traceparents[0])
	if !ok {
		return ctx
	}
	if state, ok := parseTracestate(tracestates); ok {
		sc = sc.WithTraceState(state)
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

func parseTraceparent(value string) (trace.SpanContext, bool) {
	value = strings.Trim(value, " \t")
	if len(value) < 55 || value[2] != '-' || value[35] != '-' || value[52] != '-' {
		return trace.SpanContext{}, false
	}
	version, ok := lowerHex(value[0:2])
	if !ok || version[0] == 0xff || (version[0] == 0 && len(value) != 55) ||
		(len(value) > 55 && value[55] != '-') {
		return trace.SpanContext{}, false
	}
	traceID, ok1 := lowerHex(value[3:35])
	spanID, ok2 := lowerHex(value[36:52])
	flags, ok3 := lowerHex(value[53:55])
	if !ok1 || !ok2 || !ok3 {
		return trace.SpanContext{}, false
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID(traceID),
		SpanID:     trace.SpanID(spanID),
		TraceFlags: trace.TraceFlags(flags[0]) & trace.FlagsSampled,
		Remote:     true,
	})
	return sc, sc.IsValid() // all-zero ids are invalid
}

func lowerHex(s string) ([]byte, bool) {
	if strings.ToLower(s) != s {
		return nil, false
	}
	b, err := hex.DecodeString(s)
	return b, err == nil
}

// parseTracestate combines several fields in order, drops empty members and the whitespace
// around members; an invalid list (bad member, duplicated key, > 32 members) is dropped whole.
func parseTracestate(fields []string) (trace.TraceState, bool) {
	var members []string
	for _, field := range fields {
		for _, member := range strings.Split(field, ",") {
			if member = strings.Trim(member, " \t"); member != "" {
				members = append(members, member)
			}
		}
	}
	if len(members) == 0 {
		return trace.TraceState{}, false
	}
	state, err := trace.ParseTraceState(strings.Join(members, ","))
	return state, err == nil
}

// traceresponse is the W3C Trace Context Level 2 response header naming a span.
func traceresponse(sc trace.SpanContext) string {
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()
}
