// Command heraldd is the Herald server.
//
//	heraldd [-listen ADDR] [-data DIR] [-db PATH] [-signup open|closed|invite]
//	heraldd invite [-data DIR] [-db PATH]     print a single-use signup code
//
// Every flag has an environment equivalent (HERALD_LISTEN, HERALD_DATA,
// HERALD_DB, HERALD_SIGNUP, HERALD_MASTER_KEY_FILE, HERALD_LOG_LEVEL).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/heraldim/herald/server"
	"github.com/heraldim/herald/service"
)

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "heraldd:", err)
		os.Exit(1)
	}
}

func env(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	sub := ""
	if len(args) > 0 && args[0] == "invite" {
		sub, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("heraldd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", env(getenv, "HERALD_LISTEN", "127.0.0.1:8080"), "address to listen on (HERALD_LISTEN)")
	data := fs.String("data", env(getenv, "HERALD_DATA", "./herald-data"), "data directory (HERALD_DATA)")
	db := fs.String("db", env(getenv, "HERALD_DB", ""), "database: empty for SQLite in the data directory, or a file path (HERALD_DB)")
	signup := fs.String("signup", env(getenv, "HERALD_SIGNUP", "open"), "who may sign up: open, closed or invite (HERALD_SIGNUP)")
	keyFile := fs.String("master-key-file", env(getenv, "HERALD_MASTER_KEY_FILE", ""), "32-byte master key file; default DATA/master.key, created on first start (HERALD_MASTER_KEY_FILE)")
	level := fs.String("log-level", env(getenv, "HERALD_LOG_LEVEL", "info"), "debug, info, warn or error (HERALD_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	mode := service.SignupMode(*signup)
	switch mode {
	case service.SignupOpen, service.SignupClosed, service.SignupInvite:
	default:
		return fmt.Errorf("-signup must be open, closed or invite, not %q", *signup)
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lv}))
	cfg := server.Config{Listen: *listen, DataDir: *data, DB: *db, Signup: mode, MasterKeyFile: *keyFile, Log: log}

	if sub == "invite" {
		cfg.Listen = "127.0.0.1:0"
		n, err := server.Open(cfg)
		if err != nil {
			return err
		}
		defer n.Shutdown(context.Background())
		code, err := n.Service.CreateInvite(context.Background())
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, code)
		return nil
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := server.Open(cfg)
	if err != nil {
		return err
	}
	n.Serve()
	log.Info("heraldd listening", "addr", n.Addr(), "data", *data, "signup", string(mode))
	<-ctx.Done()
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Shutdown(sctx); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}
