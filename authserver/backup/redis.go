package backup

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisProducer fetches an RDB snapshot from the running Redis the way a
// replica does: AUTH, REPLCONF capa eof, PSYNC ? -1, then the bulk payload
// that follows +FULLRESYNC. Nothing is read from Redis's volume and Redis
// writes nothing extra to disk when repl-diskless-sync is on.
func redisProducer(rawURL string) (producer, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, errors.New("REDIS_URL is not a redis:// or rediss:// URL (value not shown)")
	}
	return func(ctx context.Context, w io.Writer) error {
		awaitReachable(ctx, opt.Addr)
		return fetchRDB(ctx, opt, w)
	}, nil
}

// rdbIdle bounds the wait for the next bytes of the snapshot (Redis sends
// newlines while it prepares the RDB, so a live master never idles this long).
const rdbIdle = 2 * time.Minute

type deadlineReader struct {
	c net.Conn
	r *bufio.Reader
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	d.c.SetReadDeadline(time.Now().Add(rdbIdle))
	return d.r.Read(p)
}

func fetchRDB(ctx context.Context, opt *redis.Options, w io.Writer) error {
	where := opt.Addr
	d := &net.Dialer{Timeout: 10 * time.Second}
	var conn net.Conn
	var err error
	if opt.TLSConfig != nil {
		conn, err = (&tls.Dialer{NetDialer: d, Config: opt.TLSConfig}).DialContext(ctx, "tcp", opt.Addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", opt.Addr)
	}
	if err != nil {
		return fmt.Errorf("connecting to Redis at %s: %w; check REDIS_URL and the NetworkPolicy", where, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	br := bufio.NewReaderSize(conn, 64<<10)
	rd := &deadlineReader{c: conn, r: br}

	cmd := func(args ...string) (string, error) {
		var b bytes.Buffer
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
		conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := conn.Write(b.Bytes()); err != nil {
			return "", err
		}
		return readLine(rd)
	}
	if opt.Password != "" {
		args := []string{"AUTH", opt.Password}
		if opt.Username != "" {
			args = []string{"AUTH", opt.Username, opt.Password}
		}
		line, err := cmd(args...)
		if err != nil {
			return fmt.Errorf("authenticating to Redis at %s: %w", where, err)
		}
		if !strings.HasPrefix(line, "+") {
			return fmt.Errorf("authenticating to Redis at %s: %s; check the password in REDIS_URL", where, redisErr(line))
		}
	}
	// Announce that we understand the diskless "$EOF:<mark>" format. An
	// old server may refuse REPLCONF; then it uses the length-prefixed form.
	if _, err := cmd("REPLCONF", "capa", "eof", "capa", "psync2"); err != nil {
		return fmt.Errorf("talking to Redis at %s: %w", where, err)
	}
	line, err := cmd("PSYNC", "?", "-1")
	// While a diskless sync waits for more replicas (repl-diskless-sync-delay)
	// Redis sends bare newlines as keep-alives before +FULLRESYNC.
	for err == nil && line == "" {
		line, err = readLine(rd)
	}
	if err != nil {
		return fmt.Errorf("requesting a snapshot from Redis at %s: %w", where, err)
	}
	if !strings.HasPrefix(line, "+FULLRESYNC") {
		return fmt.Errorf("requesting a snapshot from Redis at %s: %s; the user in REDIS_URL needs the replication permissions (+psync +replconf +sync)", where, redisErr(line))
	}
	// Skip the keep-alive newlines until the bulk header.
	for {
		b, err := rd.r.ReadByte()
		if err != nil {
			return fmt.Errorf("waiting for the snapshot from Redis at %s: %w", where, err)
		}
		conn.SetReadDeadline(time.Now().Add(rdbIdle))
		if b == '\n' || b == '\r' {
			continue
		}
		if b != '$' {
			return fmt.Errorf("unexpected reply from Redis at %s while waiting for the snapshot (byte %q)", where, b)
		}
		break
	}
	hdr, err := readLine(rd)
	if err != nil {
		return fmt.Errorf("reading the snapshot header from Redis at %s: %w", where, err)
	}
	var n int64
	if mark, ok := strings.CutPrefix(hdr, "EOF:"); ok {
		if len(mark) != 40 {
			return fmt.Errorf("bad diskless snapshot header from Redis at %s", where)
		}
		n, err = copyUntilMark(w, rd, []byte(mark))
	} else {
		size, perr := strconv.ParseInt(hdr, 10, 64)
		if perr != nil || size < 0 {
			return fmt.Errorf("bad snapshot header %q from Redis at %s", hdr, where)
		}
		n, err = io.CopyN(w, rd, size)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	}
	if err != nil {
		return fmt.Errorf("reading the snapshot from Redis at %s after %d bytes: %w", where, n, err)
	}
	if n < 9 {
		return fmt.Errorf("snapshot from Redis at %s is too short (%d bytes)", where, n)
	}
	return nil
}

func redisErr(line string) string {
	s := strings.TrimPrefix(line, "-")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func readLine(r io.Reader) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for len(b) < 4096 {
		if _, err := io.ReadFull(r, one); err != nil {
			return "", err
		}
		if one[0] == '\n' {
			return strings.TrimSuffix(string(b), "\r"), nil
		}
		b = append(b, one[0])
	}
	return "", errors.New("reply line too long")
}

// copyUntilMark copies r to w until the 40-byte end mark, which is not copied.
// It holds back the last len(mark) bytes until it knows they are not the mark.
func copyUntilMark(w io.Writer, r io.Reader, mark []byte) (int64, error) {
	m := len(mark)
	buf := make([]byte, 0, 64<<10+m)
	chunk := make([]byte, 64<<10)
	var written int64
	for {
		k, err := r.Read(chunk)
		buf = append(buf, chunk[:k]...)
		// The replication stream may follow the mark in the same read.
		if i := bytes.Index(buf, mark); i >= 0 {
			out, werr := w.Write(buf[:i])
			return written + int64(out), werr
		}
		if len(buf) > m {
			out, werr := w.Write(buf[:len(buf)-m])
			written += int64(out)
			if werr != nil {
				return written, werr
			}
			buf = append(buf[:0], buf[len(buf)-m:]...)
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return written, err
		}
	}
}
