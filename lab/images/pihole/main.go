// Command pihole is the lab's Pi-hole stand-in as a container: a DNS
// responder (lab/dnsserver) on UDP and TCP port 53 of every address of the
// pod, answering every address query with --answer (the Service's IP, as
// the lab's responder does) and naming, in a TXT record, the node from
// $NODE_NAME (the downward API's spec.nodeName). `pihole probe` asks the
// server in its own network namespace and exits 0 when it answers, for an
// exec readiness probe (the lab's Deployment uses a cheaper TCP probe: an
// exec each second costs a runc exec on a 2-core machine). It exits 0 on
// SIGTERM or SIGINT.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/bgplb/bgplb/lab/dnsserver"
)

// version is set by the image build (-X main.version).
var version = "dev"

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if len(os.Args) > 1 && os.Args[1] == "probe" {
		if err := probe(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "pihole probe:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(log, os.Args[1:], os.Getenv); err != nil {
		log.Error("pihole", "err", err)
		os.Exit(1)
	}
}

// config reads the flags, with the environment as their defaults.
func config(args []string, getenv func(string) string) (dnsserver.Config, error) {
	fs := flag.NewFlagSet("pihole", flag.ContinueOnError)
	listen := fs.String("listen", envOr(getenv, "LISTEN", fmt.Sprintf(":%d", dnsserver.Port)),
		"host:port to answer on, both UDP and TCP ($LISTEN)")
	answer := fs.String("answer", getenv("ANSWER"), "the address every A or AAAA answer carries ($ANSWER)")
	node := fs.String("node", getenv("NODE_NAME"), "the node named in the TXT record ($NODE_NAME)")
	if err := fs.Parse(args); err != nil {
		return dnsserver.Config{}, err
	}
	if fs.NArg() > 0 {
		return dnsserver.Config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *answer == "" {
		return dnsserver.Config{}, errors.New("no address to answer with: set --answer or $ANSWER")
	}
	a, err := netip.ParseAddr(*answer)
	if err != nil {
		return dnsserver.Config{}, fmt.Errorf("--answer: %w", err)
	}
	if *node == "" {
		// Outside a pod, the host's name is the nearest thing.
		*node, _ = os.Hostname()
	}
	return dnsserver.Config{Listen: *listen, Node: *node, Answer: a}, nil
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

func run(log *slog.Logger, args []string, getenv func(string) string) error {
	cfg, err := config(args, getenv)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	srv, err := dnsserver.Listen(ctx, cfg)
	if err != nil {
		return err
	}
	log.Info("answering", "version", version, "udp", srv.UDPAddr(), "tcp", srv.TCPAddr(),
		"answer", cfg.Answer, "node", cfg.Node)
	<-ctx.Done()
	err = srv.Close()
	log.Info("stopped", "queries", srv.Queries())
	return err
}

// probe asks the responder for --name over UDP (or TCP) and prints the
// answer: a readiness probe that passes when the DNS server answers.
func probe(args []string) error {
	fs := flag.NewFlagSet("pihole probe", flag.ContinueOnError)
	server := fs.String("server", fmt.Sprintf("127.0.0.1:%d", dnsserver.Port), "address:port to ask")
	name := fs.String("name", "pihole.lab", "the name to ask for")
	tcp := fs.Bool("tcp", false, "ask over TCP")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ap, err := netip.ParseAddrPort(*server)
	if err != nil {
		return fmt.Errorf("--server: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	a, err := dnsserver.Query(ctx, nil, ap, *name, *tcp)
	if err != nil {
		return err
	}
	fmt.Println(a)
	return nil
}
