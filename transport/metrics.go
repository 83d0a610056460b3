package transport

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	connections   prometheus.Gauge
	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	messagesIn    prometheus.Counter
	messagesOut   prometheus.Counter
	slowConsumers prometheus.Counter
	connsRefused  *prometheus.CounterVec
	catchUps      prometheus.Counter
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herald_connections", Help: "Open WebSocket connections.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_requests_total", Help: "Requests handled, by method and result kind (OK or an error kind).",
		}, []string{"method", "kind"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "herald_request_seconds", Help: "Time from a request's arrival to its response being queued.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}, []string{"method"}),
		messagesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_messages_in_total", Help: "Messages accepted from senders.",
		}),
		messagesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_messages_out_total", Help: "New-message updates pushed to connections.",
		}),
		slowConsumers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_slow_consumers_total", Help: "Connections cut off because their outbound queue was full.",
		}),
		connsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_connections_refused_total", Help: "Connections refused by the per-account or per-address cap.",
		}, []string{"cap"}),
		catchUps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_catch_ups_total", Help: "CatchUp frames pushed because the bus may have lost events (a NATS reconnect or a subscription that fell behind).",
		}),
	}
	reg.MustRegister(m.connections, m.requests, m.latency, m.messagesIn, m.messagesOut, m.slowConsumers, m.connsRefused, m.catchUps)
	return m
}
