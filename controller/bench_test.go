package controller

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// BenchmarkServices10k measures the controller against the real API
// server: 10,000 single-stack IPv6 LoadBalancer Services exist (IPv4
// documentation space has too few addresses), then the controller starts;
// the time until every Service shows its address is reported, then the
// time a restarted controller takes to be ready again (rebuilding 10,000
// assignments from status), and that nothing moved. Set
// BGPLB_BENCH_SERVICES for another count. The controller's client has no
// rate limit here; `bgplb controller` defaults to --kube-api-qps 50, which
// caps a real burst at about 50 Services a second.
//
//	go test -run '^$' -bench Services10k -benchtime 1x ./controller
func BenchmarkServices10k(b *testing.B) {
	n := 10000
	if s := os.Getenv("BGPLB_BENCH_SERVICES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatalf("BGPLB_BENCH_SERVICES: %v", err)
		}
	}
	k := startOwnKube(b)
	k.pool(b, "bench6", []string{"2001:db8:b::/112"})
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ns, err := k.env.CreateNamespace(context.Background(), "bench")
		if err != nil {
			b.Fatal(err)
		}
		createStart := time.Now()
		k.createMany(b, ns, n)
		b.Logf("created %d Services in %v", n, time.Since(createStart).Round(time.Millisecond))
		b.StartTimer()

		start := time.Now()
		w := k.watchAllocated(b, ns, n)
		ctl := k.runController(b, RunOptions{Options: Options{HandleUnclassed: true, Workers: 4}})
		first := w.wait(b)
		took := time.Since(start)
		b.ReportMetric(took.Seconds(), "s/all-allocated")
		b.ReportMetric(float64(n)/took.Seconds(), "services/s")

		b.StopTimer()
		ctl.stop(b)
		restart := time.Now()
		ctl = k.runController(b, RunOptions{Options: Options{HandleUnclassed: true, Workers: 4}})
		for !ctl.r.Restored() {
			time.Sleep(5 * time.Millisecond)
		}
		b.ReportMetric(time.Since(restart).Seconds(), "s/restart-restored")
		// A reconcile of every Service follows the restore; once the
		// queue drains, every address must be where it was.
		time.Sleep(2 * time.Second)
		var list corev1.ServiceList
		if err := k.c.List(context.Background(), &list); err != nil {
			b.Fatal(err)
		}
		moved := 0
		for _, s := range list.Items {
			if s.Namespace != ns {
				continue
			}
			if ips := ingressIPs(&s); len(ips) != 1 || ips[0] != first[s.Name] {
				moved++
			}
		}
		if moved > 0 {
			b.Fatalf("%d Services changed address across a restart", moved)
		}
		ctl.stop(b)
		b.StartTimer()
	}
}

// createMany creates n LoadBalancer Services concurrently. They allocate
// no node ports (n may exceed the node-port range) and are IPv6
// single-stack.
func (k *kube) createMany(tb testing.TB, ns string, n int) {
	tb.Helper()
	const workers = 16
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	next := make(chan int)
	no := false
	single := corev1.IPFamilyPolicySingleStack
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				s := &corev1.Service{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("svc-%05d", i)},
					Spec: corev1.ServiceSpec{
						Type:                          corev1.ServiceTypeLoadBalancer,
						AllocateLoadBalancerNodePorts: &no,
						IPFamilies:                    []corev1.IPFamily{corev1.IPv6Protocol},
						IPFamilyPolicy:                &single,
						Ports:                         []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: 80}},
					},
				}
				if err := k.c.Create(context.Background(), s); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range n {
		select {
		case next <- i:
		case err := <-errs:
			close(next)
			wg.Wait()
			tb.Fatalf("creating Services: %v", err)
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		tb.Fatalf("creating Services: %v", err)
	default:
	}
}

// allocWatch counts a namespace's Services showing an address, from a
// watch started before the controller, so the count costs the API server
// nothing per poll.
type allocWatch struct {
	n    int
	w    watch.Interface
	seen map[string]string
}

func (k *kube) watchAllocated(tb testing.TB, ns string, n int) *allocWatch {
	tb.Helper()
	w, err := k.env.Client.CoreV1().Services(ns).Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(w.Stop)
	return &allocWatch{n: n, w: w, seen: map[string]string{}}
}

// wait returns each Service's address once all n have one.
func (a *allocWatch) wait(tb testing.TB) map[string]string {
	tb.Helper()
	timeout := time.After(10 * time.Minute)
	for len(a.seen) < a.n {
		select {
		case ev, ok := <-a.w.ResultChan():
			if !ok {
				tb.Fatalf("watch ended with %d of %d allocated", len(a.seen), a.n)
			}
			s, isSvc := ev.Object.(*corev1.Service)
			if !isSvc {
				continue
			}
			if ips := ingressIPs(s); len(ips) > 0 {
				a.seen[s.Name] = ips[0]
			}
		case <-timeout:
			tb.Fatalf("%d of %d Services allocated after 10 minutes", len(a.seen), a.n)
		}
	}
	return a.seen
}
