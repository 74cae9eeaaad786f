// Command couponclient is a calling service's use of the coupon API, in Go.
//
// It creates a coupon of -stock copies with the admin token, opens one
// WatchIssueResults stream for every request id (with_positions), lets -users
// users ask for it concurrently (IssueCoupon, each with its own request id,
// retried after UNAVAILABLE with the same id; the first -wait_users of them
// with wait_for_result), prints each QUEUED position and final result as it
// comes, and then checks what it saw against GetIssueResult, ListUserCoupons
// and GetCoupon. It exits 0 when everything is consistent, 1 on any
// inconsistency, 2 when it cannot run (no token, no gateway).
//
// The stubs in gen/ are generated from proto/ at run time (scripts/examples);
// see README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "example.com/couponclient/gen/coupon/v1"
)

type config struct {
	addr, tokenFile, prefix          string
	stock, users, waitUsers, workers int
	attempts                         int
	callTimeout, waitTimeout         time.Duration
	watchTimeout, couponSettle       time.Duration
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// localTokenFile is the local stack's admin token: .local/admin-token in the
// nearest folder up from the working directory that has one (the repository's
// root, when run from anywhere inside it).
func localTokenFile() string {
	const rel = ".local/admin-token"
	dir, err := os.Getwd()
	for err == nil {
		if _, statErr := os.Stat(filepath.Join(dir, rel)); statErr == nil {
			return filepath.Join(dir, rel)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return rel
}

func parseFlags() config {
	var c config
	flag.StringVar(&c.addr, "addr", envOr("GATEWAY_ADDR", "127.0.0.1:"+envOr("GATEWAY_PORT", "50051")),
		"the gateway (env GATEWAY_ADDR; default 127.0.0.1:$GATEWAY_PORT)")
	flag.StringVar(&c.tokenFile, "token_file", envOr("ADMIN_TOKEN_FILE", localTokenFile()),
		"the admin token for CreateCoupon (env ADMIN_TOKEN_FILE; default the nearest .local/admin-token up from here)")
	flag.IntVar(&c.stock, "stock", 5, "copies of the coupon")
	flag.IntVar(&c.users, "users", 20, "users asking for one copy each")
	flag.IntVar(&c.waitUsers, "wait_users", 2, "how many of them send wait_for_result")
	flag.IntVar(&c.workers, "concurrency", 8, "IssueCoupon calls at once")
	flag.DurationVar(&c.callTimeout, "call_timeout", 5*time.Second, "deadline of a unary call")
	flag.DurationVar(&c.waitTimeout, "wait_timeout", 3*time.Second, "deadline of an IssueCoupon with wait_for_result")
	flag.DurationVar(&c.watchTimeout, "watch_timeout", 30*time.Second, "how long to wait for every final result")
	flag.IntVar(&c.attempts, "attempts", 6, "tries of a call that fails UNAVAILABLE (same request id)")
	flag.DurationVar(&c.couponSettle, "coupon_settle", 0,
		"how long GetCoupon's issued_quantity may lag the results (0: not at all; the Redis issuer's outbox syncs every 10 s: use 30s)")
	flag.StringVar(&c.prefix, "prefix", "go", "request ids are <prefix>-<coupon>-<user>")
	flag.Parse()
	if c.users < 1 || c.users > 1000 { // one watch takes at most 1,000 request ids
		fail("-users must be 1 to 1000")
	}
	if c.stock < 1 || c.workers < 1 || c.attempts < 1 {
		fail("-stock, -concurrency and -attempts must be at least 1")
	}
	return c
}

func outcomeName(o pb.IssueOutcome) string {
	return strings.TrimPrefix(o.String(), "ISSUE_OUTCOME_")
}

func positionText(p *pb.QueuePosition) string {
	return fmt.Sprintf("%d ahead (%s)", p.GetRequestsAhead(), p.GetScope())
}

func notFinal(o pb.IssueOutcome) bool {
	return o == pb.IssueOutcome_ISSUE_OUTCOME_UNSPECIFIED || o == pb.IssueOutcome_ISSUE_OUTCOME_ACCEPTED ||
		o == pb.IssueOutcome_ISSUE_OUTCOME_QUEUED
}

// sale is what the client saw, shared by the issuing goroutines and the
// watch goroutine under mu.
type sale struct {
	cfg      config
	client   pb.CouponServiceClient
	couponID int64
	users    []string
	rid      map[string]string // user -> request id
	userOf   map[string]string // request id -> user

	mu                sync.Mutex
	answers           map[string]*pb.IssueCouponResponse
	waited            map[string]bool
	earlyGets         map[string]string          // request id -> QUEUED / NOT_FOUND / final
	earlyFinals       map[string]*pb.IssueResult // the finals among them
	finals            map[string]*pb.IssueResult // the watch's
	queued            []*pb.IssueResult          // QUEUED updates from the watch
	acceptedPositions int
	retries           int
	streams           int
	problems, notes   []string
}

func (s *sale) say(format string, a ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Printf(format+"\n", a...)
}

func (s *sale) problem(format string, a ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	text := fmt.Sprintf(format, a...)
	s.problems = append(s.problems, text)
	fmt.Println("INCONSISTENT: " + text)
}

func (s *sale) note(format string, a ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	text := fmt.Sprintf(format, a...)
	s.notes = append(s.notes, text)
	fmt.Println("note: " + text)
}

// codeName is the status code as the gRPC spec spells it (DEADLINE_EXCEEDED).
func codeName(c codes.Code) string {
	if c == codes.Canceled {
		return "CANCELLED"
	}
	var b strings.Builder
	for i, r := range c.String() {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}

func describe(err error) string {
	st := status.Convert(err)
	return codeName(st.Code()) + " " + st.Message()
}

// backoff is the pause before try attempt+1: 0.1 s doubling up to 2 s, with jitter.
func backoff(attempt int) time.Duration {
	return time.Duration(float64(min(2*time.Second, 100*time.Millisecond<<(attempt-1))) * (0.5 + rand.Float64()/2))
}

// retryable: failures after which the call may or may not have been carried
// out. This client never cancels a unary call itself, so Canceled is the
// server's or the connection's doing: a gateway shutting down has answered an
// IssueCoupon in flight CANCELLED.
func retryable(err error) bool {
	code := status.Code(err)
	return code == codes.Unavailable || code == codes.Canceled
}

// withRetries runs call, each try with its own deadline, until it does not fail
// UNAVAILABLE (or CANCELLED), at most -attempts times. Safe for every call it
// wraps: reads, and IssueCoupon, whose request id makes a retry the same
// request (never a second copy).
func withRetries[T any](s *sale, what string, timeout time.Duration, call func(ctx context.Context) (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		v, err := call(ctx)
		cancel()
		if !retryable(err) || attempt == s.cfg.attempts {
			return v, err
		}
		pause := backoff(attempt)
		s.mu.Lock()
		s.retries++
		s.mu.Unlock()
		s.say("retry  %s: %s (%s), again in %.2fs", what, codeName(status.Code(err)), status.Convert(err).Message(), pause.Seconds())
		time.Sleep(pause)
	}
}

func (s *sale) issue(user string, wait bool) {
	rid := s.rid[user]
	req := &pb.IssueCouponRequest{CouponId: s.couponID, UserId: user, RequestId: rid, WaitForResult: wait}
	timeout := s.cfg.callTimeout
	if wait {
		timeout = s.cfg.waitTimeout
	}
	resp, err := withRetries(s, "IssueCoupon "+rid, timeout, func(ctx context.Context) (*pb.IssueCouponResponse, error) {
		return s.client.IssueCoupon(ctx, req)
	})
	if err != nil {
		s.problem("IssueCoupon %s failed: %s", rid, describe(err))
		return
	}
	text := fmt.Sprintf("issue  %s: %s", rid, outcomeName(resp.GetOutcome()))
	if resp.GetOutcome() == pb.IssueOutcome_ISSUE_OUTCOME_ISSUED {
		text += fmt.Sprintf(" user_coupon_id=%d", resp.GetUserCouponId())
	}
	if resp.GetPosition() != nil {
		text += ", " + positionText(resp.GetPosition())
	}
	if wait {
		text += " (wait_for_result)"
	}
	s.mu.Lock()
	s.answers[rid] = resp
	s.waited[rid] = wait
	if resp.GetOutcome() == pb.IssueOutcome_ISSUE_OUTCOME_ACCEPTED && resp.GetPosition() != nil {
		s.acceptedPositions++
	}
	s.mu.Unlock()
	s.say("%s", text)
	if resp.GetOutcome() != pb.IssueOutcome_ISSUE_OUTCOME_ACCEPTED {
		return
	}
	// Where does it stand right now? A gateway that knows positions answers
	// QUEUED; one that does not answers NOT_FOUND until it is decided.
	get := &pb.GetIssueResultRequest{RequestId: rid, UserId: user, CouponId: s.couponID, WithPosition: true}
	r, err := withRetries(s, "GetIssueResult "+rid, s.cfg.callTimeout, func(ctx context.Context) (*pb.IssueResult, error) {
		return s.client.GetIssueResult(ctx, get)
	})
	early := ""
	switch {
	case status.Code(err) == codes.NotFound:
		early = "NOT_FOUND"
	case err != nil:
		s.problem("GetIssueResult %s failed: %s", rid, describe(err))
		return
	case r.GetOutcome() == pb.IssueOutcome_ISSUE_OUTCOME_QUEUED:
		early = "QUEUED"
		s.say("get    %s: QUEUED, %s", rid, positionText(r.GetPosition()))
	default:
		early = "final " + outcomeName(r.GetOutcome())
	}
	s.mu.Lock()
	s.earlyGets[rid] = early
	if err == nil && !notFinal(r.GetOutcome()) {
		s.earlyFinals[rid] = r
	}
	s.mu.Unlock()
}

// watch reads final results (and QUEUED positions) until every id has its
// final one. A stream ended by UNAVAILABLE or RESOURCE_EXHAUSTED is opened
// again for the ids still missing, which also sends what was decided
// meanwhile: at most -attempts times in a row without a result in between.
func (s *sale) watch(ctx context.Context) {
	pending := map[string]bool{}
	for _, rid := range s.rid {
		pending[rid] = true
	}
	sortedPending := func() []string { return slices.Sorted(maps.Keys(pending)) }
	for failures := 0; len(pending) > 0; {
		s.mu.Lock()
		s.streams++
		s.mu.Unlock()
		stream, err := s.client.WatchIssueResults(ctx, &pb.WatchIssueResultsRequest{
			RequestIds: sortedPending(), WithPositions: true})
		ahead := map[string]int64{} // this stream's last position per request id
		for err == nil {
			var r *pb.IssueResult
			if r, err = stream.Recv(); err != nil {
				break
			}
			rid := r.GetRequestId()
			failures = 0
			switch {
			case s.userOf[rid] == "":
				s.problem("watch sent a result for an id it was not asked for: %s", rid)
			case r.GetOutcome() == pb.IssueOutcome_ISSUE_OUTCOME_QUEUED:
				if !pending[rid] {
					s.note("QUEUED for %s after its final result", rid)
				}
				n := r.GetPosition().GetRequestsAhead()
				if last, ok := ahead[rid]; ok && n > last {
					s.note("%s's position grew on one stream: %d -> %d", rid, last, n)
				}
				ahead[rid] = n
				s.mu.Lock()
				s.queued = append(s.queued, r)
				s.mu.Unlock()
				s.say("watch  %s: QUEUED, %s", rid, positionText(r.GetPosition()))
			case notFinal(r.GetOutcome()):
				s.problem("watch sent %s for %s", outcomeName(r.GetOutcome()), rid)
			default:
				s.mu.Lock()
				first := s.finals[rid]
				if first == nil {
					s.finals[rid] = r
				}
				s.mu.Unlock()
				if first != nil && (first.GetOutcome() != r.GetOutcome() || first.GetUserCouponId() != r.GetUserCouponId()) {
					s.problem("two final results for %s: %s, %s", rid, outcomeName(first.GetOutcome()), outcomeName(r.GetOutcome()))
				}
				delete(pending, rid)
				text := fmt.Sprintf("watch  %s: %s", rid, outcomeName(r.GetOutcome()))
				if r.GetOutcome() == pb.IssueOutcome_ISSUE_OUTCOME_ISSUED {
					text += fmt.Sprintf(" user_coupon_id=%d", r.GetUserCouponId())
				}
				s.say("%s, %d left", text, r.GetRemainingQuantity())
			}
		}
		switch code := status.Code(err); {
		case errors.Is(err, io.EOF):
			if len(pending) > 0 {
				s.problem("the watch ended before every id had its final result: %v", sortedPending())
			}
			return
		case code == codes.DeadlineExceeded:
			s.problem("no final result within -watch_timeout for %v", sortedPending())
			return
		case (code == codes.Unavailable || code == codes.ResourceExhausted) && failures+1 < s.cfg.attempts:
			failures++
			s.note("watch ended %s (%s); watching again", codeName(code), status.Convert(err).Message())
			time.Sleep(backoff(failures))
		default:
			s.problem("watch failed: %s; no final result for %v", describe(err), sortedPending())
			return
		}
	}
}

func sameResult(a, b interface {
	GetOutcome() pb.IssueOutcome
	GetUserCouponId() int64
}) bool {
	return a.GetOutcome() == b.GetOutcome() && a.GetUserCouponId() == b.GetUserCouponId()
}

// check compares the watch's finals with every other view of the same requests.
func (s *sale) check() *pb.Coupon {
	issued := map[string]*pb.IssueResult{}
	copyIDs := map[int64]bool{}
	soldOut := false
	for _, rid := range slices.Sorted(maps.Keys(s.finals)) {
		r := s.finals[rid]
		switch r.GetOutcome() {
		case pb.IssueOutcome_ISSUE_OUTCOME_ISSUED:
			issued[rid] = r
			copyIDs[r.GetUserCouponId()] = true
			if r.GetUserCouponId() == 0 {
				s.problem("%s: ISSUED without user_coupon_id", rid)
			}
		case pb.IssueOutcome_ISSUE_OUTCOME_SOLD_OUT:
			soldOut = true
		default:
			s.problem("%s: %s, but each user asked once for an open coupon", rid, outcomeName(r.GetOutcome()))
		}
		if a := s.answers[rid]; a != nil && !notFinal(a.GetOutcome()) && !sameResult(a, r) {
			s.problem("%s: IssueCoupon answered %s, the watch %s", rid, outcomeName(a.GetOutcome()), outcomeName(r.GetOutcome()))
		}
		if e := s.earlyFinals[rid]; e != nil && !sameResult(e, r) {
			s.problem("%s: GetIssueResult answered %s, the watch %s", rid, outcomeName(e.GetOutcome()), outcomeName(r.GetOutcome()))
		}
		get := &pb.GetIssueResultRequest{RequestId: rid, UserId: s.userOf[rid], CouponId: s.couponID}
		got, err := withRetries(s, "GetIssueResult "+rid, s.cfg.callTimeout, func(ctx context.Context) (*pb.IssueResult, error) {
			return s.client.GetIssueResult(ctx, get)
		})
		if err != nil {
			s.problem("GetIssueResult %s: %s", rid, describe(err))
		} else if !sameResult(got, r) {
			s.problem("%s: GetIssueResult answers %s (%d), the watch said %s (%d)", rid,
				outcomeName(got.GetOutcome()), got.GetUserCouponId(), outcomeName(r.GetOutcome()), r.GetUserCouponId())
		}
	}
	if len(issued) > s.cfg.stock {
		s.problem("%d ISSUED, more than the stock of %d", len(issued), s.cfg.stock)
	}
	if len(copyIDs) != len(issued) {
		s.problem("two ISSUED results share a user_coupon_id")
	}
	if len(issued) < s.cfg.stock && soldOut {
		s.problem("SOLD_OUT with %d copies never issued", s.cfg.stock-len(issued))
	}

	for _, user := range s.users {
		rid := s.rid[user]
		var copies []*pb.UserCoupon
		for after := int64(0); ; { // the user's coupons from every sale; this coupon's are ours
			req := &pb.ListUserCouponsRequest{UserId: user, PageSize: 1000, AfterUserCouponId: after}
			page, err := withRetries(s, "ListUserCoupons "+user, s.cfg.callTimeout, func(ctx context.Context) (*pb.ListUserCouponsResponse, error) {
				return s.client.ListUserCoupons(ctx, req)
			})
			if err != nil {
				s.problem("ListUserCoupons %s: %s", user, describe(err))
				break
			}
			for _, c := range page.GetCoupons() {
				if c.GetCouponId() == s.couponID {
					copies = append(copies, c)
				}
			}
			if after = page.GetNextAfterUserCouponId(); after == 0 {
				break
			}
		}
		if len(copies) > 1 {
			s.problem("%s holds %d copies of coupon %d", user, len(copies), s.couponID)
		}
		if r := issued[rid]; r != nil {
			found := false
			for _, c := range copies {
				found = found || (c.GetUserCouponId() == r.GetUserCouponId() && c.GetRequestId() == rid)
			}
			if !found {
				s.problem("%s's ISSUED copy %d is missing from ListUserCoupons", user, r.GetUserCouponId())
			}
		} else if len(copies) > 0 {
			s.problem("%s holds a copy, but %s was not ISSUED", user, rid)
		}
	}

	// The Kafka issuer's worker commits the stock with the result, so GetCoupon
	// agrees at once; the Redis issuer's stock reaches PostgreSQL later, through
	// the outbox (-coupon_settle).
	settleStart := time.Now()
	var coupon *pb.Coupon
	for {
		var err error
		coupon, err = withRetries(s, "GetCoupon", s.cfg.callTimeout, func(ctx context.Context) (*pb.Coupon, error) {
			return s.client.GetCoupon(ctx, &pb.GetCouponRequest{CouponId: s.couponID})
		})
		if err != nil {
			s.problem("GetCoupon: %s", describe(err))
			return nil
		}
		if coupon.GetIssuedQuantity() >= int64(len(issued)) || time.Since(settleStart) >= s.cfg.couponSettle {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if s.cfg.couponSettle > 0 && coupon.GetIssuedQuantity() == int64(len(issued)) {
		s.note("GetCoupon agreed with the results %.1fs after the sale", time.Since(settleStart).Seconds())
	}
	if coupon.GetIssuedQuantity() != int64(len(issued)) {
		s.problem("GetCoupon says %d issued, the results %d", coupon.GetIssuedQuantity(), len(issued))
	}
	if coupon.GetIssuedQuantity()+coupon.GetRemainingQuantity() != coupon.GetTotalQuantity() {
		s.problem("GetCoupon: issued %d + remaining %d != total %d",
			coupon.GetIssuedQuantity(), coupon.GetRemainingQuantity(), coupon.GetTotalQuantity())
	}
	return coupon
}

func counts(names []string) string {
	tally := map[string]int{}
	for _, n := range names {
		tally[n]++
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(tally)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, tally[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func (s *sale) report(coupon *pb.Coupon) {
	var answers, waited, early, finals []string
	for rid, a := range s.answers {
		answers = append(answers, outcomeName(a.GetOutcome()))
		if s.waited[rid] {
			waited = append(waited, outcomeName(a.GetOutcome()))
		}
	}
	for _, e := range s.earlyGets {
		early = append(early, e)
	}
	for _, r := range s.finals {
		finals = append(finals, outcomeName(r.GetOutcome()))
	}
	fmt.Printf("\n== report: coupon %d, stock %d, %d users, gateway %s\n", s.couponID, s.cfg.stock, len(s.users), s.cfg.addr)
	fmt.Printf("IssueCoupon answers:    %s (%d ACCEPTED with a position); retries: %d\n",
		counts(answers), s.acceptedPositions, s.retries)
	fmt.Printf("  wait_for_result:      %s\n", counts(waited))
	fmt.Printf("GetIssueResult right after ACCEPTED (with_position): %s\n", counts(early))
	if len(s.queued) > 0 {
		lo, hi := s.queued[0].GetPosition().GetRequestsAhead(), s.queued[0].GetPosition().GetRequestsAhead()
		ids, scopes := map[string]bool{}, map[string]bool{}
		for _, q := range s.queued {
			lo, hi = min(lo, q.GetPosition().GetRequestsAhead()), max(hi, q.GetPosition().GetRequestsAhead())
			ids[q.GetRequestId()] = true
			scopes[q.GetPosition().GetScope().String()] = true
		}
		scopeNames := slices.Sorted(maps.Keys(scopes))
		fmt.Printf("QUEUED updates:         %d for %d requests, requests_ahead %d..%d, scope %s\n",
			len(s.queued), len(ids), lo, hi, strings.Join(scopeNames, ", "))
	} else {
		fmt.Println("QUEUED updates:         none (this gateway sent no positions)")
	}
	fmt.Printf("final outcomes (watch): %s on %d stream(s)\n", counts(finals), s.streams)
	if coupon != nil {
		fmt.Printf("GetCoupon:              issued %d, remaining %d of %d\n",
			coupon.GetIssuedQuantity(), coupon.GetRemainingQuantity(), coupon.GetTotalQuantity())
	}
	seen := map[string]int{}
	for _, n := range s.notes {
		seen[n]++
	}
	for _, n := range slices.Sorted(maps.Keys(seen)) {
		if seen[n] > 1 {
			n += fmt.Sprintf(" (%d times)", seen[n])
		}
		fmt.Println("note: " + n)
	}
	if len(s.problems) > 0 {
		fmt.Printf("INCONSISTENT: %d problem(s):\n", len(s.problems))
		for _, p := range s.problems {
			fmt.Println("  - " + p)
		}
	} else {
		fmt.Println("consistent: every check passed")
	}
}

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "couponclient: "+format+"\n", a...)
	os.Exit(2)
}

func main() {
	cfg := parseFlags()
	raw, err := os.ReadFile(cfg.tokenFile)
	if err != nil {
		fail("no admin token (%v); scripts/up or scripts/services start writes one to .local/admin-token", err)
	}
	conn, err := grpc.NewClient(cfg.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fail("%s: %v", cfg.addr, err)
	}
	defer conn.Close()
	client := pb.NewCouponServiceClient(conn)

	// Not retried: CreateCoupon has no idempotency key, so a retry after a lost
	// answer would make a second coupon. WaitForReady lets it wait (within its
	// deadline) for the connection instead of failing at once.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+strings.TrimSpace(string(raw)))
	coupon, err := client.CreateCoupon(ctx, &pb.CreateCouponRequest{Name: cfg.prefix + " example sale", TotalQuantity: int64(cfg.stock)},
		grpc.WaitForReady(true))
	cancel()
	if err != nil {
		fail("CreateCoupon on %s: %s", cfg.addr, describe(err))
	}
	s := &sale{cfg: cfg, client: client, couponID: coupon.GetCouponId(),
		rid: map[string]string{}, userOf: map[string]string{},
		answers: map[string]*pb.IssueCouponResponse{}, waited: map[string]bool{},
		earlyGets: map[string]string{}, earlyFinals: map[string]*pb.IssueResult{},
		finals: map[string]*pb.IssueResult{}}
	for i := range cfg.users {
		user := fmt.Sprintf("user-%02d", i)
		rid := fmt.Sprintf("%s-%d-%s", cfg.prefix, s.couponID, user)
		s.users = append(s.users, user)
		s.rid[user], s.userOf[rid] = rid, user
	}
	fmt.Printf("created coupon %d with %d copies; %d users ask for one each\n", s.couponID, coupon.GetTotalQuantity(), cfg.users)

	// The watch opens first, so it sees the requests while they are queued.
	watchCtx, stopWatch := context.WithTimeout(context.Background(), cfg.watchTimeout)
	defer stopWatch()
	var watched sync.WaitGroup
	watched.Add(1)
	go func() {
		defer watched.Done()
		s.watch(watchCtx)
	}()
	next := make(chan int)
	var issued sync.WaitGroup
	for range cfg.workers {
		issued.Add(1)
		go func() {
			defer issued.Done()
			for i := range next {
				s.issue(s.users[i], i < cfg.waitUsers)
			}
		}()
	}
	for i := range s.users {
		next <- i
	}
	close(next)
	issued.Wait()
	watched.Wait()

	s.report(s.check())
	if len(s.problems) > 0 {
		os.Exit(1)
	}
}
