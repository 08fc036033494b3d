package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

const healthCheckTimeout = 1500 * time.Millisecond

var validRequestID = regexp.MustCompile(`^[\x21-\x7e]{1,200}$`) // visible ASCII, bounded

// App is the service: configuration, telemetry, store and bus.
type App struct {
	cfg     Config
	logger  *Logger
	metrics *Metrics
	tracer  trace.Tracer
	store   *Store
	bus     *Bus
}

func (a *App) router() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	engine := gin.New()
	engine.HandleMethodNotAllowed = true
	engine.Use(a.telemetry)
	engine.GET("/health", a.health)
	engine.GET("/metrics", gin.WrapH(promhttp.HandlerFor(a.metrics.registry, promhttp.HandlerOpts{})))
	engine.GET("/api/fail", a.fail)
	engine.POST("/api/inventory", a.addStock)
	engine.GET("/api/stock-levels", a.stockLevels)
	engine.GET("/api/reservations", a.reservations)
	a.metrics.initRoutes(map[string]string{
		"/api/inventory": "POST 201", "/api/stock-levels": "GET 200", "/api/reservations": "GET 200",
	})
	return engine
}

// telemetry is the one middleware: X-Request-ID, the SERVER span (context extracted from
// traceparent/tracestate), the request counter and histogram, one log line per request.
// /health and /metrics are neither traced, counted nor logged.
func (a *App) telemetry(c *gin.Context) {
	path := c.Request.URL.Path
	if path == "/health" || path == "/metrics" {
		c.Next()
		return
	}
	started := time.Now()
	method := c.Request.Method
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	requestID := c.GetHeader(requestIDHeader)
	if !validRequestID.MatchString(requestID) {
		requestID = newRequestID()
	}
	header := c.Request.Header
	ctx := remoteContext(withRequestID(c.Request.Context(), requestID),
		header.Values("Traceparent"), header.Values("Tracestate"))
	name := method
	if route != "unmatched" {
		name += " " + route
	}
	ctx, span := a.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("http.request.method", method),
			attribute.String("url.path", path),
			attribute.String("url.scheme", "http"),
			attribute.String("network.protocol.version", fmt.Sprintf("%d.%d", c.Request.ProtoMajor, c.Request.ProtoMinor)),
		))
	if route != "unmatched" {
		span.SetAttributes(attribute.String("http.route", route))
	}
	c.Request = c.Request.WithContext(ctx)
	c.Header("X-Request-ID", requestID)
	if sc := span.SpanContext(); sc.IsValid() {
		c.Header("traceresponse", traceresponse(sc))
	}
	defer func() {
		if recovered := recover(); recovered != nil {
			a.answerError(c, fmt.Errorf("panic: %v", recovered), http.StatusInternalServerError)
		}
		status := c.Writer.Status()
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 { // error.type: conditionally required by the HTTP conventions
			span.SetAttributes(attribute.String("error.type", strconv.Itoa(status)))
			span.SetStatus(codes.Error, http.StatusText(status))
		}
		labels := []string{method, route, strconv.Itoa(status)}
		a.metrics.requests.WithLabelValues(labels...).Inc()
		a.metrics.duration.WithLabelValues(labels...).Observe(time.Since(started).Seconds())
		a.logger.Info(ctx, "http", fmt.Sprintf("%s %s -> %d", method, path, status), Fields{
			"http_method": method, "http_path": path, "http_route": route, "http_status": status,
			"duration_ms": float64(time.Since(started).Microseconds()) / 1000,
		})
		span.End()
	}()
	c.Next()
}

func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// answerError answers 503 naming the dependency that is down (500 for anything else), marks
// the SERVER span ERROR and logs the failure.
func (a *App) answerError(c *gin.Context, err error, status int) {
	ctx := c.Request.Context()
	span := trace.SpanFromContext(ctx)
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
	body := gin.H{"detail": "internal error"}
	fields := Fields{}
	var down *DependencyDown
	if errors.As(err, &down) {
		status = http.StatusServiceUnavailable
		body = gin.H{"detail": down.Dependency + " unavailable", "dependency": down.Dependency}
		fields["dependency"] = down.Dependency
	}
	a.logger.Error(ctx, "service", fmt.Sprintf("%s %s failed: %v", c.Request.Method, c.Request.URL.Path, err), fields)
	c.AbortWithStatusJSON(status, body)
}

func (a *App) health(c *gin.Context) {
	checks := map[string]func(context.Context) error{
		"postgres": a.store.PingPostgres,
		"mongodb":  a.store.PingMongo,
		"nats": func(context.Context) error {
			if !a.bus.Connected() {
				return errors.New("not connected")
			}
			return nil
		},
	}
	results := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, check := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), healthCheckTimeout)
			defer cancel()
			status := "ok"
			if err := check(ctx); err != nil {
				status = truncate("down: "+err.Error(), 300)
			}
			mu.Lock()
			results[name] = status
			mu.Unlock()
		}()
	}
	wg.Wait()
	body := gin.H{"status": "ok", "service": a.cfg.Service, "dependencies": results}
	for _, status := range results {
		if status != "ok" {
			body["status"] = "unavailable"
			c.JSON(http.StatusServiceUnavailable, body)
			return
		}
	}
	c.JSON(http.StatusOK, body)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// fail is the conformance error hook (target capability `error_hook`): always 5xx.
func (a *App) fail(c *gin.Context) {
	a.answerError(c, &DependencyDown{"error-hook", errors.New("failure requested by /api/fail")}, 0)
}

func (a *App) addStock(c *gin.Context) {
	receipt, problems := parseReceipt(c.Request.Body)
	if len(problems) > 0 {
		c.JSON(http.StatusUnprocessableEntity, gin.H{"detail": problems})
		return
	}
	total, err := a.store.AddStock(c.Request.Context(), receipt.SKU, receipt.Qty, receipt.Warehouse)
	if err != nil {
		a.answerError(c, err, http.StatusInternalServerError)
		return
	}
	a.metrics.stockUpdates.Inc()
	c.JSON(http.StatusCreated, gin.H{"sku": receipt.SKU, "warehouse": receipt.Warehouse, "qty": total})
}

func (a *App) stockLevels(c *gin.Context) {
	var sku *string
	if values, ok := c.Request.URL.Query()["sku"]; ok {
		value := strings.TrimSpace(values[len(values)-1])
		if value == "" || len(value) > 64 {
			c.JSON(http.StatusUnprocessableEntity, gin.H{"detail": []Problem{
				{Type: "string_length", Loc: []any{"query", "sku"}, Msg: "sku must be 1-64 characters"}}})
			return
		}
		sku = &value
	}
	levels, err := a.store.StockLevels(c.Request.Context(), sku)
	if err != nil {
		a.answerError(c, err, http.StatusInternalServerError)
		return
	}
	c.JSON(http.StatusOK, levels)
}

func (a *App) reservations(c *gin.Context) {
	var orderID *string
	if values, ok := c.Request.URL.Query()["order_id"]; ok {
		value := values[len(values)-1]
		if len(value) > 36 {
			c.JSON(http.StatusUnprocessableEntity, gin.H{"detail": []Problem{
				{Type: "string_too_long", Loc: []any{"query", "order_id"}, Msg: "order_id must be at most 36 characters"}}})
			return
		}
		orderID = &value
	}
	found, err := a.store.ListReservations(c.Request.Context(), orderID)
	if err != nil {
		a.answerError(c, err, http.StatusInternalServerError)
		return
	}
	c.JSON(http.StatusOK, found)
}

// Problem is one validation error, shaped like FastAPI's: the field is named in loc.
type Problem struct {
	Type string `json:"type"`
	Loc  []any  `json:"loc"`
	Msg  string `json:"msg"`
}

// Receipt is a validated POST /api/inventory body.
type Receipt struct {
	SKU       string
	Qty       int64
	Warehouse string
}

const maxBody = 1 << 20

func parseReceipt(body io.Reader) (Receipt, []Problem) {
	raw, err := io.ReadAll(io.LimitReader(body, maxBody+1))
	if err != nil || len(raw) > maxBody {
		return Receipt{}, []Problem{{"json_invalid", []any{"body"}, "request body unreadable or too large"}}
	}
	decoder := json.NewDecoder(bytes.NewReader(raw))
	decoder.UseNumber()
	var fields map[string]any
	if err := decoder.Decode(&fields); err != nil || fields == nil {
		return Receipt{}, []Problem{{"model_attributes_type", []any{"body"}, "body must be a JSON object"}}
	}
	var receipt Receipt
	var problems []Problem
	receipt.SKU, problems = text(fields, "sku", problems)
	receipt.Qty, problems = quantity(fields, "qty", 1, 1_000_000, problems)
	receipt.Warehouse, problems = text(fields, "warehouse", problems)
	return receipt, problems
}

func text(fields map[string]any, name string, problems []Problem) (string, []Problem) {
	loc := []any{"body", name}
	value, present := fields[name]
	s, ok := value.(string)
	switch {
	case !present:
		return "", append(problems, Problem{"missing", loc, "Field required"})
	case !ok:
		return "", append(problems, Problem{"string_type", loc, "Input should be a valid string"})
	}
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 64 {
		return "", append(problems, Problem{"string_length", loc, name + " must be 1-64 characters"})
	}
	return s, problems
}

func quantity(fields map[string]any, name string, low, high int64, problems []Problem) (int64, []Problem) {
	loc := []any{"body", name}
	value, present := fields[name]
	if !present {
		return 0, append(problems, Problem{"missing", loc, "Field required"})
	}
	number, ok := value.(json.Number)
	if !ok {
		return 0, append(problems, Problem{"int_type", loc, "Input should be a valid integer"})
	}
	n, err := strconv.ParseInt(number.String(), 10, 64)
	if err != nil {
		f, ferr := number.Float64()
		if ferr != nil || f != float64(int64(f)) {
			return 0, append(problems, Problem{"int_parsing", loc, "Input should be a valid integer"})
		}
		n = int64(f)
	}
	if n < low || n > high {
		return 0, append(problems, Problem{"int_range", loc,
			fmt.Sprintf("%s must be between %d and %d", name, low, high)})
	}
	return n, problems
}
