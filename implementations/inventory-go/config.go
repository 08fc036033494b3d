package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Config is read from the environment only, with the same variables and defaults as the
// Python reference services (docs/contract.md, section 2).
type Config struct {
	Service          string
	Host             string
	Port             int
	PostgresURL      string
	MongoURL         string
	MongoDB          string
	NatsURL          string
	OTLPEndpoint     string
	Faults           Faults
	Telemetry        bool
	ConsumerRelation string // "parent": consume spans continue the trace; "link": new trace + link
}

func configFromEnv() (Config, error) {
	port, err := strconv.Atoi(env("OBSCONF_PORT", "8002"))
	if err != nil {
		return Config{}, fmt.Errorf("OBSCONF_PORT: %w", err)
	}
	faults, err := parseFaults(os.Getenv("OBSCONF_FAULTS"))
	if err != nil {
		return Config{}, err
	}
	relation := env("OBSCONF_CONSUMER_RELATION", "parent")
	if relation != "parent" && relation != "link" {
		return Config{}, fmt.Errorf("OBSCONF_CONSUMER_RELATION must be one of parent, link, not %q", relation)
	}
	telemetry := strings.ToLower(env("OBSCONF_TELEMETRY", "on"))
	return Config{
		Service:          env("OBSCONF_SERVICE", "inventory-service"),
		Host:             env("OBSCONF_HOST", "127.0.0.1"),
		Port:             port,
		PostgresURL:      env("POSTGRES_URL", "postgresql://obsconf@127.0.0.1:5432/obsconf"),
		MongoURL:         env("MONGODB_URL", "mongodb://127.0.0.1:27017"),
		MongoDB:          env("MONGODB_DB", "obsconf"),
		NatsURL:          env("NATS_URL", "nats://127.0.0.1:4222"),
		OTLPEndpoint:     strings.TrimRight(env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"), "/"),
		Faults:           faults,
		Telemetry:        telemetry != "off" && telemetry != "0" && telemetry != "false",
		ConsumerRelation: relation,
	}, nil
}

func env(name, fallback string) string {
	if value, ok := os.LookupEnv(name); ok && value != "" {
		return value
	}
	return fallback
}
