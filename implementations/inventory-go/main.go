// Command inventory-go is the seed design's Inventory API in Go (Gin): stock in PostgreSQL,
// stock levels in MongoDB, reservations on `order.created` from NATS JetStream, with the
// telemetry the obsconf implementer's contract asks for (docs/contract.md).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

const durable = "inventory-service-order-created"

func main() {
	if len(os.Args) == 2 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck())
	}
	cfg, err := configFromEnv()
	if err != nil {
		fmt.Fprintf(os.Stderr, "inventory-go: %v\n", err)
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		os.Exit(1)
	}
}

func run(cfg Config) error {
	metrics := newMetrics()
	var out io.Writer = os.Stdout
	if dir := os.Getenv("OBSCONF_LOG_DIR"); dir != "" {
		// In a container with no shell (compose): also append to the file the shipper tails.
		file, err := os.OpenFile(filepath.Join(dir, cfg.Service+".log"),
			os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintf(os.Stderr, "inventory-go: OBSCONF_LOG_DIR: %v\n", err)
			return err
		}
		defer file.Close()
		out = io.MultiWriter(os.Stdout, file)
	}
	logger := newLogger(out, cfg.Service, cfg.Faults, metrics)
	log.SetFlags(0)
	log.SetOutput(lineWriter{logger: logger, level: "warning", name: "stdlib"})
	fail := func(step string, err error) error {
		logger.Error(context.Background(), "service", step+": "+err.Error(), nil)
		return err
	}
	provider, shutdownTracing, err := setupTracing(cfg, logger)
	if err != nil {
		return fail("tracing", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = shutdownTracing(ctx) // flush pending spans
	}()
	app := &App{cfg: cfg, logger: logger, metrics: metrics, tracer: provider.Tracer(tracerName)}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if app.store, err = openStore(ctx, cfg, app.tracer); err != nil {
		return fail("database", err)
	}
	defer app.store.Close(context.Background())
	if app.bus, err = connectBus(ctx, app); err != nil {
		return fail("nats", err)
	}
	defer app.bus.Close()
	if err := app.bus.Consume(ctx, "order.created", durable, app.onOrderCreated); err != nil {
		return fail("consumer", err)
	}
	listener, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		return fail("listen", err)
	}
	server := &http.Server{
		Handler:           app.router(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		ErrorLog:          log.Default(),
	}
	logger.Info(ctx, "service", fmt.Sprintf("starting on %s:%d", cfg.Host, cfg.Port), Fields{
		"faults": cfg.Faults.list(), "telemetry": cfg.Telemetry, "consumer_relation": cfg.ConsumerRelation,
	})
	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()
	select {
	case err = <-served:
		return fail("serve", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := server.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		logger.Warn(context.Background(), "service", "shutdown: "+err.Error(), nil)
	}
	return nil
}

// healthcheck is the container's health probe (a scratch image has no curl): GET /health on
// the service's own port; 0 when it answers 200.
func healthcheck() int {
	client := http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get("http://127.0.0.1:" + env("OBSCONF_PORT", "8002") + "/health")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "health:", resp.Status)
		return 1
	}
	return 0
}

// onOrderCreated reserves the order's items once per event.
func (a *App) onOrderCreated(ctx context.Context, event Event) error {
	var order struct {
		ID    json.RawMessage `json:"id"`
		Items []Item          `json:"items"`
	}
	if err := json.Unmarshal(event.Data, &order); err != nil {
		return fmt.Errorf("order.created data: %w", err)
	}
	orderID := string(order.ID)
	var asString string
	if json.Unmarshal(order.ID, &asString) == nil {
		orderID = asString
	}
	written, err := a.store.Reserve(ctx, event.EventID, orderID, order.Items)
	if err != nil {
		return err
	}
	if written > 0 {
		a.metrics.stockReservations.Add(float64(written))
		a.logger.Info(ctx, "inventory", "stock reserved", Fields{"order_id": orderID, "rows": written})
	} else {
		a.logger.Info(ctx, "inventory", "duplicate order.created ignored: already reserved",
			Fields{"order_id": orderID, "event_id": event.EventID})
	}
	return nil
}
