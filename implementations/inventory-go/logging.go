package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
)

type ctxKey int

const requestIDKey ctxKey = iota

func withRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// Fields are extra top-level keys of a log line.
type Fields map[string]any

// Logger writes one JSON object per line (ts, level, msg, service, trace_id, span_id,
// request_id, logger, extra fields) and counts every line it writes in log_records_total.
// Everything the process prints goes through it, so the count equals the lines in the file.
type Logger struct {
	mu      sync.Mutex
	out     io.Writer
	service string
	faults  Faults
	metrics *Metrics
	written int
}

func newLogger(out io.Writer, service string, faults Faults, metrics *Metrics) *Logger {
	return &Logger{out: out, service: service, faults: faults, metrics: metrics}
}

func (l *Logger) Info(ctx context.Context, logger, msg string, fields Fields) {
	l.log(ctx, "info", logger, msg, fields)
}

func (l *Logger) Warn(ctx context.Context, logger, msg string, fields Fields) {
	l.log(ctx, "warning", logger, msg, fields)
}

func (l *Logger) Error(ctx context.Context, logger, msg string, fields Fields) {
	l.log(ctx, "error", logger, msg, fields)
}

func (l *Logger) log(ctx context.Context, level, logger, msg string, fields Fields) {
	line := l.format(ctx, level, logger, msg, fields)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.metrics.logRecords.WithLabelValues(level).Inc() // counted before it can be lost
	l.written++
	if l.faults.On("drop-logs") && l.written%3 == 0 {
		return
	}
	_, _ = l.out.Write(line)
}

func (l *Logger) format(ctx context.Context, level, logger, msg string, fields Fields) []byte {
	if logger == "http" && l.faults.On("plain-text-logs") {
		return []byte(fmt.Sprintf("%s %s %s\n", strings.ToUpper(level), l.service, msg))
	}
	traceID, spanID := "", ""
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && !l.faults.On("log-no-trace-id") {
		traceID, spanID = sc.TraceID().String(), sc.SpanID().String()
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	write := func(key string, value any) {
		if buf.Len() > 1 {
			buf.WriteByte(',')
		}
		k, _ := marshal(key)
		v, err := marshal(value)
		if err != nil {
			v, _ = marshal(fmt.Sprint(value))
		}
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(v)
	}
	write("ts", time.Now().UTC().Format("2006-01-02T15:04:05.000+00:00"))
	write("level", level)
	write("msg", msg)
	write("service", l.service)
	write("trace_id", traceID)
	write("span_id", spanID)
	write("request_id", requestIDFrom(ctx))
	write("logger", "inventory-go."+logger)
	keys := make([]string, 0, len(fields))
	for key := range fields {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		write(key, fields[key])
	}
	buf.WriteString("}\n")
	return buf.Bytes()
}

// marshal is json.Marshal without HTML escaping (`->` stays readable in messages).
func marshal(value any) ([]byte, error) {
	var buf bytes.Buffer
	encoder := json.NewEncoder(&buf)
	encoder.SetEscapeHTML(false)
	if err := encoder.Encode(value); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// lineWriter turns whatever a library prints (Go's `log` package, OpenTelemetry's error
// handler) into counted JSON lines.
type lineWriter struct {
	logger *Logger
	level  string
	name   string
}

func (w lineWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if line != "" {
			w.logger.log(context.Background(), w.level, w.name, line, nil)
		}
	}
	return len(p), nil
}
