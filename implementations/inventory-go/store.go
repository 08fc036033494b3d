package main

// Inventory in PostgreSQL (source of truth) and MongoDB `stock_levels` (read model), as in
// reference_services/inventory/store.py: each write recomputes the affected SKUs' levels from
// PostgreSQL and upserts them into MongoDB inside the same PostgreSQL transaction, under a
// per-SKU advisory lock; a MongoDB failure rolls the PostgreSQL write back. Reservations are
// keyed by (event_id, sku): a redelivered `order.created` inserts nothing.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// callTimeout bounds one dependency call (the drivers' own timeouts are shorter).
const callTimeout = 4 * time.Second

const schema = `
CREATE TABLE IF NOT EXISTS inventory (
    sku VARCHAR(64) NOT NULL, warehouse VARCHAR(64) NOT NULL, qty INTEGER NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (sku, warehouse));
CREATE TABLE IF NOT EXISTS reservations (
    event_id VARCHAR(36) NOT NULL, sku VARCHAR(64) NOT NULL, order_id VARCHAR(36) NOT NULL,
    qty INTEGER NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, sku));
CREATE INDEX IF NOT EXISTS ix_reservations_order_id ON reservations (order_id);`

// DependencyDown: a backing service did not answer in time (answered with 503).
type DependencyDown struct {
	Dependency string
	Err        error
}

func (e *DependencyDown) Error() string {
	return fmt.Sprintf("%s unavailable: %v", e.Dependency, e.Err)
}

func (e *DependencyDown) Unwrap() error { return e.Err }

// classify turns connection failures and timeouts into DependencyDown; SQL and write errors
// the server answered stay as they are.
func classify(dependency string, err error) error {
	if err == nil {
		return nil
	}
	var down *DependencyDown
	var pgErr *pgconn.PgError
	var cmdErr mongo.CommandError
	var writeErr mongo.WriteException
	switch {
	case errors.As(err, &down):
		return err
	case dependency == "postgres" && errors.As(err, &pgErr):
		return err
	case dependency == "mongodb" && (errors.As(err, &cmdErr) || errors.As(err, &writeErr)) &&
		!mongo.IsTimeout(err) && !mongo.IsNetworkError(err):
		return err
	}
	return &DependencyDown{Dependency: dependency, Err: err}
}

// Store holds both databases and the tracer for their CLIENT spans.
type Store struct {
	pool   *pgxpool.Pool
	mongo  *mongo.Client
	levels *mongo.Collection
	tracer trace.Tracer
}

func openStore(ctx context.Context, cfg Config, tracer trace.Tracer) (*Store, error) {
	pgConfig, err := pgxpool.ParseConfig(cfg.PostgresURL)
	if err != nil {
		return nil, fmt.Errorf("POSTGRES_URL: %w", err)
	}
	pgConfig.ConnConfig.ConnectTimeout = 2 * time.Second
	pgConfig.MaxConns = 10
	pgConfig.ConnConfig.Tracer = &sqlTracer{tracer: tracer}
	pool, err := pgxpool.NewWithConfig(ctx, pgConfig)
	if err != nil {
		return nil, err
	}
	setup, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := pool.Exec(setup, schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("creating tables: %w", err)
	}
	client, err := mongo.Connect(options.Client().ApplyURI(cfg.MongoURL).
		SetServerSelectionTimeout(2 * time.Second).SetConnectTimeout(2 * time.Second).
		SetTimeout(callTimeout))
	if err != nil {
		pool.Close()
		return nil, err
	}
	levels := client.Database(cfg.MongoDB).Collection("stock_levels")
	return &Store{pool: pool, mongo: client, levels: levels, tracer: tracer}, nil
}

func (s *Store) Close(ctx context.Context) {
	s.pool.Close()
	_ = s.mongo.Disconnect(ctx)
}

// PingPostgres and PingMongo are the health probes (untraced).
func (s *Store) PingPostgres(ctx context.Context) error { return s.pool.Ping(ctx) }

func (s *Store) PingMongo(ctx context.Context) error {
	return s.mongo.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err()
}

// StockLevel is one document of `stock_levels` (its _id is the SKU).
type StockLevel struct {
	SKU       string `bson:"sku" json:"sku"`
	OnHand    int64  `bson:"on_hand" json:"on_hand"`
	Reserved  int64  `bson:"reserved" json:"reserved"`
	Available int64  `bson:"available" json:"available"`
	UpdatedAt string `bson:"updated_at" json:"updated_at"`
}

// Reservation is one row of `reservations`.
type Reservation struct {
	EventID   string `json:"event_id"`
	OrderID   string `json:"order_id"`
	SKU       string `json:"sku"`
	Qty       int64  `json:"qty"`
	CreatedAt string `json:"created_at"`
}

// Item is one line of an order.
type Item struct {
	SKU string `json:"sku"`
	Qty int64  `json:"qty"`
}

// AddStock adds qty of sku at warehouse and returns the warehouse's new quantity.
func (s *Store) AddStock(ctx context.Context, sku string, qty int64, warehouse string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var total int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO inventory (sku, warehouse, qty) VALUES ($1, $2, $3)
			ON CONFLICT (sku, warehouse) DO UPDATE SET qty = inventory.qty + excluded.qty,
			updated_at = now() RETURNING qty`, sku, warehouse, qty).Scan(&total)
		if err != nil {
			return classify("postgres", err)
		}
		return s.syncStockLevels(ctx, tx, []string{sku})
	})
	return total, err
}

// Reserve reserves an order's items once per event; returns the rows written (0: duplicate).
func (s *Store) Reserve(ctx context.Context, eventID, orderID string, items []Item) (int, error) {
	var skus []string
	perSKU := map[string]int64{}
	for _, item := range items {
		if _, seen := perSKU[item.SKU]; !seen {
			skus = append(skus, item.SKU)
		}
		perSKU[item.SKU] += item.Qty
	}
	if len(skus) == 0 {
		return 0, nil
	}
	values := make([]string, 0, len(skus))
	args := []any{eventID, orderID}
	for _, sku := range skus {
		args = append(args, sku, perSKU[sku])
		values = append(values, fmt.Sprintf("($1, $%d, $2, $%d)", len(args)-1, len(args)))
	}
	query := "INSERT INTO reservations (event_id, sku, order_id, qty) VALUES " +
		strings.Join(values, ", ") + " ON CONFLICT DO NOTHING RETURNING sku"
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var written []string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, query, args...)
		if err != nil {
			return classify("postgres", err)
		}
		written, err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return classify("postgres", err)
		}
		if len(written) == 0 {
			return nil
		}
		return s.syncStockLevels(ctx, tx, written)
	})
	return len(written), err
}

func (s *Store) inTx(ctx context.Context, body func(pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return classify("postgres", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := body(tx); err != nil {
		return err
	}
	return classify("postgres", tx.Commit(ctx))
}

// syncStockLevels recomputes skus from PostgreSQL and upserts them into MongoDB (inside tx).
func (s *Store) syncStockLevels(ctx context.Context, tx pgx.Tx, skus []string) error {
	unique := map[string]bool{}
	for _, sku := range skus {
		unique[sku] = true
	}
	sorted := make([]string, 0, len(unique))
	for sku := range unique {
		sorted = append(sorted, sku)
	}
	sort.Strings(sorted)
	for _, sku := range sorted {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", sku); err != nil {
			return classify("postgres", err)
		}
		var onHand, reserved int64
		err := tx.QueryRow(ctx, `SELECT
			(SELECT coalesce(sum(qty), 0) FROM inventory WHERE sku = $1),
			(SELECT coalesce(sum(qty), 0) FROM reservations WHERE sku = $1)`, sku).
			Scan(&onHand, &reserved)
		if err != nil {
			return classify("postgres", err)
		}
		level := StockLevel{sku, onHand, reserved, onHand - reserved, isoformat(time.Now())}
		err = s.mongoCall(ctx, "update", func(ctx context.Context) error {
			_, err := s.levels.UpdateOne(ctx, bson.D{{Key: "_id", Value: sku}},
				bson.D{{Key: "$set", Value: level}}, options.UpdateOne().SetUpsert(true))
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// ListReservations returns up to 1000 reservations, oldest first (of one order if given).
func (s *Store) ListReservations(ctx context.Context, orderID *string) ([]Reservation, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	query := "SELECT event_id, order_id, sku, qty, created_at FROM reservations"
	var args []any
	if orderID != nil {
		query += " WHERE order_id = $1"
		args = append(args, *orderID)
	}
	rows, err := s.pool.Query(ctx, query+" ORDER BY created_at LIMIT 1000", args...)
	if err != nil {
		return nil, classify("postgres", err)
	}
	found := []Reservation{}
	for rows.Next() {
		var r Reservation
		var created time.Time
		if err := rows.Scan(&r.EventID, &r.OrderID, &r.SKU, &r.Qty, &created); err != nil {
			return nil, classify("postgres", err)
		}
		r.CreatedAt = isoformat(created)
		found = append(found, r)
	}
	return found, classify("postgres", rows.Err())
}

// StockLevels returns up to 1000 stock levels by SKU (one SKU's if given).
func (s *Store) StockLevels(ctx context.Context, sku *string) ([]StockLevel, error) {
	filter := bson.D{}
	if sku != nil {
		filter = bson.D{{Key: "_id", Value: *sku}}
	}
	levels := []StockLevel{}
	err := s.mongoCall(ctx, "find", func(ctx context.Context) error {
		cursor, err := s.levels.Find(ctx, filter,
			options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(1000))
		if err != nil {
			return err
		}
		return cursor.All(ctx, &levels)
	})
	return levels, err
}

// mongoCall runs one MongoDB operation under a CLIENT span and the call timeout.
func (s *Store) mongoCall(ctx context.Context, operation string, call func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	ctx, span := s.tracer.Start(ctx, operation+" stock_levels", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("db.system.name", "mongodb"),
			attribute.String("db.system", "mongodb"),
			attribute.String("db.operation.name", operation),
			attribute.String("db.collection.name", "stock_levels"),
		))
	defer span.End()
	err := classify("mongodb", call(ctx))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}

// isoformat writes a time as Python's datetime.isoformat() does for an aware UTC datetime.
func isoformat(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()/1000 == 0 {
		return t.Format("2006-01-02T15:04:05+00:00")
	}
	return t.Format("2006-01-02T15:04:05.000000+00:00")
}

// sqlTracer gives every SQL statement a CLIENT span, only inside a trace (health probes and
// start-up stay untraced).
type sqlTracer struct{ tracer trace.Tracer }

type sqlSpanKey struct{}

func (t *sqlTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	operation := strings.ToUpper(strings.Fields(data.SQL + " x")[0])
	ctx, span := t.tracer.Start(ctx, operation, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("db.system.name", "postgresql"),
			attribute.String("db.system", "postgresql"),
			attribute.String("db.operation.name", operation),
			attribute.String("db.query.text", data.SQL),
		))
	return context.WithValue(ctx, sqlSpanKey{}, span)
}

func (t *sqlTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	span, ok := ctx.Value(sqlSpanKey{}).(trace.Span)
	if !ok {
		return
	}
	if data.Err != nil {
		span.RecordError(data.Err)
		span.SetStatus(codes.Error, data.Err.Error())
	}
	span.End()
}
