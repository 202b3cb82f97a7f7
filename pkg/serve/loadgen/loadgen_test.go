package loadgen

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {95, 95 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {1, time.Millisecond}} {
		if got := Percentile(d, c.p); got != c.want {
			t.Errorf("p%g = %v, want %v", c.p, got, c.want)
		}
	}
	if Percentile([]time.Duration{7}, 99) != 7 || Percentile(nil, 50) != 0 {
		t.Error("percentiles of one or no value")
	}
}

func TestOnlyLoopback(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:80", "http://127.3.4.5:9"} {
		if err := CheckLoopback(u); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	for _, u := range []string{"http://10.0.0.1:80", "http://example.com", "https://127.0.0.1", "http://192.168.1.1", "ftp://localhost"} {
		if err := CheckLoopback(u); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
	if _, err := Run(context.Background(), Config{URL: "http://10.1.2.3:80", Requests: []Request{{Text: "x"}}}); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("Run to a private address: %v", err)
	}
}

// TestLost counts requests to a port nobody listens on as lost, within the deadline.
func TestLost(t *testing.T) {
	rep, err := Run(context.Background(), Config{URL: "http://127.0.0.1:1", Requests: []Request{{Text: "x"}}, N: 3, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Lost != 3 || rep.OK != 0 || !strings.Contains(rep.String(), "3 lost") {
		t.Errorf("report: %s", rep)
	}
}
