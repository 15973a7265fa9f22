package main

// The gRPC loads' client: a lean HTTP/2 client of the same design as the
// HTTP/1.1 one in load.go, so that the load generator takes as little of the
// machine's two CPUs from the server as it can (grpc-go's client took 0.3
// cores more than the HTTP/1.1 client at a lower rate: docs/benchmarks.md,
// "Session 7"). In a cluster the caller is Envoy, in C++, on other cores.
//
// HTTP/2 framing and HPACK are golang.org/x/net/http2's Framer and hpack;
// the request is a CheckRequest of the upstream Envoy Go types. Each call
// slot's HEADERS block and gRPC message are encoded once and sent as they
// are on every call: the HPACK block uses no dynamic table (it starts with a
// table size update to 0), so it means the same on every stream. One
// goroutine per connection writes the calls and reads the answers, flushing
// its writes only when it has nothing more to read.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"sync"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// grpcStreamsPerConn: Envoy multiplexes its checks over a few HTTP/2
// connections; so does the load.
const grpcStreamsPerConn = 8

// checkMethod is the ext_authz Check's HTTP/2 path.
const checkMethod = "/envoy.service.auth.v3.Authorization/Check"

// grpcSpec describes one closed-loop gRPC load: conns calls in flight
// (grpcStreamsPerConn to an HTTP/2 connection), each slot sending its next
// call as soon as the previous answer arrived, for dur.
type grpcSpec struct {
	name  string
	addr  string // host:port, loopback
	conns int
	dur   time.Duration
	// request is call slot c's request, encoded once.
	request func(c int) *authv3.CheckRequest
	// For the tests; zero means the default.
	streamWindow uint32 // the window we give each stream (SETTINGS_INITIAL_WINDOW_SIZE), default 65535
	connWindow   uint32 // the connection's receive window, default 1 MiB
	lastStreamID uint32 // the highest stream id before a new connection, default 2^31-1
}

// grpcStats counts what the HTTP/2 layer did, for the tests.
type grpcStats struct {
	dials         int   // connections opened
	windowUpdates int   // WINDOW_UPDATE frames sent (connection and stream)
	dataBytes     int64 // DATA payload received
	refused       int   // calls the server refused (REFUSED_STREAM) and that were sent again
}

// runGRPCLoad runs the load. An allowed CheckResponse (grpc-status 0, the
// response's status code 0) counts as status 200, a denied one as its
// DeniedHttpResponse's HTTP status; a failed call (connection error, reset
// stream, GOAWAY before it was processed, a grpc-status other than 0, an
// answer that is not a CheckResponse) as a transport error.
func runGRPCLoad(ctx context.Context, s grpcSpec) (loadResult, grpcStats) {
	if s.streamWindow == 0 {
		s.streamWindow = 65535
	}
	if s.connWindow == 0 {
		s.connWindow = 1 << 20
	}
	if s.lastStreamID == 0 {
		s.lastStreamID = math.MaxInt32
	}
	slots := make([]*h2slot, s.conns)
	for c := range slots {
		sl, err := newSlot(s.addr, s.request(c))
		if err != nil {
			return loadResult{Name: s.name, Conns: s.conns, Errors: 1, ErrorMsg: map[string]int{trimErr(err): 1}}, grpcStats{}
		}
		slots[c] = sl
	}
	var clients []*h2client
	for i := 0; i < len(slots); i += grpcStreamsPerConn {
		clients = append(clients, &h2client{spec: &s, slots: slots[i:min(i+grpcStreamsPerConn, len(slots))],
			st: &connStats{statuses: map[int]int{}, errMsg: map[string]int{}}})
	}
	var wg, ready sync.WaitGroup
	ready.Add(len(clients))
	gate := make(chan struct{})
	for _, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = cl.connect() // if it fails, run dials again and counts the error
			ready.Done()
			<-gate
			cl.run(ctx)
		}()
	}
	ready.Wait()
	start := time.Now()
	for _, cl := range clients {
		cl.deadline = start.Add(s.dur)
	}
	close(gate)
	wg.Wait()
	stats := make([]*connStats, len(clients))
	var gs grpcStats
	for i, cl := range clients {
		stats[i] = cl.st
		gs.dials += cl.stats.dials
		gs.windowUpdates += cl.stats.windowUpdates
		gs.dataBytes += cl.stats.dataBytes
		gs.refused += cl.stats.refused
	}
	return summarize(s.name, s.conns, 200, start, s.dur, stats), gs
}

// h2slot is one call slot: its encoded request and the call in flight.
type h2slot struct {
	headers []byte // the HPACK block of the request's HEADERS
	msg     []byte // the length-prefixed CheckRequest

	id          uint32
	t0          time.Time
	sendWin     int64  // the stream's send window
	unsent      []byte // the part of msg flow control held back
	recvUnacked uint32 // DATA received and not yet returned by a WINDOW_UPDATE
	status      string // :status
	grpcStatus  string
	grpcMessage string
	resp        []byte // the answer's DATA (reused)
}

func newSlot(authority string, req *authv3.CheckRequest) (*h2slot, error) {
	pb, err := proto.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encoding the CheckRequest: %w", err)
	}
	msg := make([]byte, 5, 5+len(pb))
	binary.BigEndian.PutUint32(msg[1:], uint32(len(pb)))
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	enc.SetMaxDynamicTableSizeLimit(0) // no dynamic table: the block is the same on every stream
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", checkMethod}, {":authority", authority},
		{"content-type", "application/grpc"}, {"te", "trailers"}, {"user-agent", "authbench"}} {
		if err := enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
			return nil, err
		}
	}
	return &h2slot{headers: hb.Bytes(), msg: append(msg, pb...), resp: make([]byte, 0, 512)}, nil
}

// h2client is one HTTP/2 connection of the load (redialled when it ends)
// and its call slots; one goroutine runs it.
type h2client struct {
	spec     *grpcSpec
	slots    []*h2slot
	st       *connStats
	stats    grpcStats
	deadline time.Time

	nc  net.Conn
	br  *bufio.Reader
	bw  *bufio.Writer
	fr  *http2.Framer
	dec *hpack.Decoder
	cur *h2slot // the stream whose header block is being decoded

	active         map[uint32]*h2slot
	waiting        []*h2slot // slots held back by the server's MAX_CONCURRENT_STREAMS
	nextID         uint32
	sendWin        int64 // the connection's send window
	peerInitWin    int64 // the server's SETTINGS_INITIAL_WINDOW_SIZE
	peerMaxStreams uint32
	peerMaxFrame   int
	recvUnacked    uint32
	draining       bool // GOAWAY received or stream ids used up: no new stream on this connection
}

// connect dials, sends the preface, our SETTINGS and the connection window.
func (c *h2client) connect() error {
	nc, err := net.DialTimeout("tcp", c.spec.addr, 5*time.Second)
	if err != nil {
		return err
	}
	c.stats.dials++
	c.nc = nc
	if c.br == nil {
		c.br, c.bw = bufio.NewReaderSize(nc, 32<<10), bufio.NewWriterSize(nc, 32<<10)
		c.active = map[uint32]*h2slot{}
	} else {
		c.br.Reset(nc)
		c.bw.Reset(nc)
		clear(c.active)
	}
	c.fr = http2.NewFramer(c.bw, c.br)
	c.fr.SetReuseFrames()
	c.dec = hpack.NewDecoder(4096, c.onHeader)
	c.waiting, c.cur = c.waiting[:0], nil
	c.nextID, c.sendWin, c.peerInitWin, c.peerMaxStreams, c.peerMaxFrame = 1, 65535, 65535, math.MaxUint32, 16384
	c.recvUnacked, c.draining = 0, false
	c.bw.WriteString(http2.ClientPreface)
	settings := []http2.Setting{{ID: http2.SettingEnablePush, Val: 0}}
	if c.spec.streamWindow != 65535 {
		settings = append(settings, http2.Setting{ID: http2.SettingInitialWindowSize, Val: c.spec.streamWindow})
	}
	c.fr.WriteSettings(settings...)
	if c.spec.connWindow > 65535 {
		c.fr.WriteWindowUpdate(0, c.spec.connWindow-65535)
	}
	return nil // written by the first flush; a write error shows there
}

// run keeps the slots' calls going until the deadline, redialling a
// connection that ended (GOAWAY, stream ids used up, an error).
func (c *h2client) run(ctx context.Context) {
	for ctx.Err() == nil && time.Now().Before(c.deadline) {
		if c.nc == nil {
			if err := c.connect(); err != nil {
				for range c.slots { // each slot's call failed, as in the HTTP/1.1 load
					c.fail(err)
				}
				time.Sleep(10 * time.Millisecond)
				continue
			}
		}
		err := c.serve(ctx)
		c.nc.Close()
		c.nc = nil
		if err != nil {
			for range c.active { // each call in flight failed
				c.fail(err)
			}
		}
	}
	if c.nc != nil {
		c.nc.Close()
	}
}

func (c *h2client) fail(err error) {
	c.st.errors++
	c.st.errMsg[trimErr(err)]++
}

// serve starts every slot's call on the new connection and reads until no
// call is in flight and none may start.
func (c *h2client) serve(ctx context.Context) error {
	nc := c.nc
	stop := context.AfterFunc(ctx, func() { nc.SetReadDeadline(time.Now()) })
	defer stop()
	// A call still unanswered this long after the deadline fails (no hang).
	nc.SetReadDeadline(c.deadline.Add(10 * time.Second))
	now := time.Now()
	for _, s := range c.slots {
		c.start(s, now)
	}
	for len(c.active) > 0 {
		if c.br.Buffered() == 0 && c.bw.Buffered() > 0 {
			if err := c.bw.Flush(); err != nil {
				return err
			}
		}
		f, err := c.fr.ReadFrame()
		if err != nil {
			return err
		}
		if err := c.handle(f); err != nil {
			return err
		}
	}
	return c.bw.Flush()
}

// start sends slot s's next call, unless the load is over or the
// connection is draining (then s waits for the next connection).
func (c *h2client) start(s *h2slot, now time.Time) {
	if c.draining || !now.Before(c.deadline) {
		return
	}
	if c.nextID > c.spec.lastStreamID {
		c.draining = true // a new connection once the calls in flight are answered
		return
	}
	if uint32(len(c.active)) >= c.peerMaxStreams {
		c.waiting = append(c.waiting, s)
		return
	}
	s.id, s.t0 = c.nextID, now
	c.nextID += 2
	s.sendWin, s.recvUnacked = c.peerInitWin, 0
	s.status, s.grpcStatus, s.grpcMessage, s.resp = "", "", "", s.resp[:0]
	c.active[s.id] = s
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: s.id, BlockFragment: s.headers, EndHeaders: true})
	s.unsent = s.msg
	c.sendData(s)
}

// sendData sends what flow control allows of s's request.
func (c *h2client) sendData(s *h2slot) {
	for len(s.unsent) > 0 {
		n := min(int64(len(s.unsent)), c.sendWin, s.sendWin, int64(c.peerMaxFrame))
		if n <= 0 {
			return
		}
		c.fr.WriteData(s.id, n == int64(len(s.unsent)), s.unsent[:n])
		s.unsent, c.sendWin, s.sendWin = s.unsent[n:], c.sendWin-n, s.sendWin-n
	}
}

func (c *h2client) windowUpdate(id, n uint32) {
	c.fr.WriteWindowUpdate(id, n)
	c.stats.windowUpdates++
}

func (c *h2client) handle(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.DataFrame:
		c.stats.dataBytes += int64(f.Length)
		if c.recvUnacked += f.Length; c.recvUnacked >= c.spec.connWindow/2 {
			c.windowUpdate(0, c.recvUnacked)
			c.recvUnacked = 0
		}
		s := c.active[f.StreamID]
		if s == nil { // a stream we already gave up: only the connection window counts
			return nil
		}
		s.resp = append(s.resp, f.Data()...)
		if f.StreamEnded() {
			c.end(s, errors.New("answer without trailers"))
		} else if s.recvUnacked += f.Length; s.recvUnacked >= c.spec.streamWindow/2 {
			c.windowUpdate(s.id, s.recvUnacked)
			s.recvUnacked = 0
		}
	case *http2.HeadersFrame:
		// Decode every header block, even of a stream we gave up: HPACK's
		// table is the connection's.
		s, ended := c.active[f.StreamID], f.StreamEnded()
		c.cur = s
		frag, last := f.HeaderBlockFragment(), f.HeadersEnded()
		for {
			if _, err := c.dec.Write(frag); err != nil {
				return fmt.Errorf("decoding headers: %w", err)
			}
			if last {
				break
			}
			nf, err := c.fr.ReadFrame() // the Framer allows only this stream's CONTINUATION here
			if err != nil {
				return err
			}
			cf, ok := nf.(*http2.ContinuationFrame)
			if !ok {
				return fmt.Errorf("a %v frame inside a header block", nf.Header().Type)
			}
			frag, last = cf.HeaderBlockFragment(), cf.HeadersEnded()
		}
		if err := c.dec.Close(); err != nil {
			return fmt.Errorf("decoding headers: %w", err)
		}
		c.cur = nil
		if s != nil && ended {
			c.end(s, nil)
		}
	case *http2.SettingsFrame:
		if f.IsAck() {
			return nil
		}
		f.ForeachSetting(func(st http2.Setting) error {
			switch st.ID {
			case http2.SettingInitialWindowSize:
				for _, s := range c.active {
					s.sendWin += int64(st.Val) - c.peerInitWin
				}
				c.peerInitWin = int64(st.Val)
			case http2.SettingMaxConcurrentStreams:
				c.peerMaxStreams = st.Val
			case http2.SettingMaxFrameSize:
				c.peerMaxFrame = int(st.Val)
			}
			return nil
		})
		c.fr.WriteSettingsAck()
		c.resume()
	case *http2.PingFrame:
		if !f.IsAck() {
			c.fr.WritePing(true, f.Data)
		}
	case *http2.WindowUpdateFrame:
		if f.StreamID == 0 {
			c.sendWin += int64(f.Increment)
			c.resume()
		} else if s := c.active[f.StreamID]; s != nil {
			s.sendWin += int64(f.Increment)
			c.sendData(s)
		}
	case *http2.RSTStreamFrame:
		s := c.active[f.StreamID]
		switch {
		case s == nil:
		case f.ErrCode == http2.ErrCodeRefusedStream && len(c.active) > 1:
			// Not processed: over the server's stream limit, sent before its
			// SETTINGS arrived. Again once another call is answered.
			delete(c.active, s.id)
			s.unsent = nil
			c.waiting = append(c.waiting, s)
			c.stats.refused++
		default:
			c.end(s, fmt.Errorf("stream reset: %v", f.ErrCode))
		}
	case *http2.GoAwayFrame:
		// The calls up to LastStreamID are answered; the later ones were
		// not processed and fail. No new stream here: a new connection
		// once the answered ones are done.
		c.draining = true
		for id, s := range c.active {
			if id > f.LastStreamID {
				c.end(s, fmt.Errorf("GOAWAY %v: call not processed", f.ErrCode))
			}
		}
	}
	return nil
}

// resume sends what flow control or the stream limit held back.
func (c *h2client) resume() {
	for _, s := range c.active {
		c.sendData(s)
	}
	for len(c.waiting) > 0 && uint32(len(c.active)) < c.peerMaxStreams && !c.draining {
		s := c.waiting[0]
		c.waiting = c.waiting[1:]
		c.start(s, time.Now())
	}
}

func (c *h2client) onHeader(f hpack.HeaderField) {
	s := c.cur
	if s == nil {
		return
	}
	switch f.Name {
	case ":status":
		s.status = f.Value
	case "grpc-status":
		s.grpcStatus = f.Value
	case "grpc-message":
		s.grpcMessage = f.Value
	}
}

// end records s's call (err: it failed) and starts its next one.
func (c *h2client) end(s *h2slot, err error) {
	delete(c.active, s.id)
	now := time.Now()
	if len(s.unsent) > 0 { // answered before we sent all of it: close our side
		c.fr.WriteRSTStream(s.id, http2.ErrCodeCancel)
		s.unsent = nil
	}
	status := 0
	if err == nil {
		status, err = s.answer()
	}
	if err != nil {
		c.fail(err)
	} else {
		c.st.statuses[status]++
		c.st.last = now
		if status == 200 && len(c.st.lat) < 200000 {
			c.st.lat = append(c.st.lat, now.Sub(s.t0))
		}
	}
	if len(c.waiting) > 0 { // the slots held back by the stream limit go first
		c.waiting = append(c.waiting, s)
		s, c.waiting = c.waiting[0], c.waiting[1:]
	}
	c.start(s, now)
}

// answer checks a finished call: HTTP 200, grpc-status 0, one uncompressed
// CheckResponse; 200 if it allows, the denied answer's HTTP status if not.
func (s *h2slot) answer() (int, error) {
	if s.status != "200" {
		return 0, fmt.Errorf("HTTP status %q", s.status)
	}
	if s.grpcStatus != "0" {
		return 0, fmt.Errorf("grpc-status %q: %s", s.grpcStatus, s.grpcMessage)
	}
	b := s.resp
	if len(b) < 5 || b[0] != 0 || int(binary.BigEndian.Uint32(b[1:5])) != len(b)-5 {
		return 0, fmt.Errorf("not one uncompressed gRPC message (%d bytes)", len(b))
	}
	code, httpStatus, err := checkAnswer(b[5:])
	if err != nil {
		return 0, err
	}
	if code == 0 {
		return 200, nil
	}
	return httpStatus, nil
}

// checkAnswer reads a CheckResponse's status code (field 1, a
// google.rpc.Status: its field 1) and its denied answer's HTTP status
// (field 2, a DeniedHttpResponse: field 1, an envoy.type.v3.HttpStatus:
// field 1), without decoding the rest.
func checkAnswer(b []byte) (code, httpStatus int, err error) {
	st, err := protoBytes(b, 1)
	if err != nil {
		return 0, 0, err
	}
	c, err := protoVarint(st, 1)
	if err != nil {
		return 0, 0, err
	}
	denied, err := protoBytes(b, 2)
	if err != nil {
		return 0, 0, err
	}
	hs, err := protoBytes(denied, 1)
	if err != nil {
		return 0, 0, err
	}
	h, err := protoVarint(hs, 1)
	return int(int32(c)), int(h), err
}

// protoBytes is the last value of the length-delimited field num in the
// message b (nil if absent).
func protoBytes(b []byte, num protowire.Number) ([]byte, error) {
	var v []byte
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return nil, protowire.ParseError(l)
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			v, l = protowire.ConsumeBytes(b)
		} else {
			l = protowire.ConsumeFieldValue(n, typ, b)
		}
		if l < 0 {
			return nil, protowire.ParseError(l)
		}
		b = b[l:]
	}
	return v, nil
}

// protoVarint is the last value of the varint field num in the message b
// (0 if absent).
func protoVarint(b []byte, num protowire.Number) (uint64, error) {
	var v uint64
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return 0, protowire.ParseError(l)
		}
		b = b[l:]
		if n == num && typ == protowire.VarintType {
			v, l = protowire.ConsumeVarint(b)
		} else {
			l = protowire.ConsumeFieldValue(n, typ, b)
		}
		if l < 0 {
			return 0, protowire.ParseError(l)
		}
		b = b[l:]
	}
	return v, nil
}
