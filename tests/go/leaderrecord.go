// Go s3lect's view of the lock object: the seed's LeaderRecord, encoded and decoded by
// encoding/json exactly as Go s3lect does.
//
//	go run leaderrecord.go encode DIR   writes one golden record per file, as Go s3lect writes them
//	go run leaderrecord.go decode       reads records (one JSON object per line) from stdin and
//	                                    prints what Go decoded, one JSON line each
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// LeaderRecord as Go s3lect declares it (its documented wire format; see README "Wire format").
type LeaderRecord struct {
	LeaderID    string    `json:"leaderID,omitempty"`
	LeaderAddr  string    `json:"leaderAddr,omitempty"`
	LastUpdated time.Time `json:"lastUpdated"`
}

func encode(dir string) error {
	at := time.Date(2026, 11, 28, 5, 31, 7, 123456789, time.UTC)
	cet := time.FixedZone("CET", 3600)
	golden := map[string]LeaderRecord{
		"leader-nanos":        {LeaderID: "go-node-1", LeaderAddr: "10.0.0.7:8443", LastUpdated: at},
		"leader-trimmed":      {LeaderID: "go-node-1", LeaderAddr: "10.0.0.7:8443", LastUpdated: at.Truncate(100 * time.Millisecond)},
		"leader-whole-second": {LeaderID: "go-node-2", LastUpdated: at.Truncate(time.Second)},
		"leader-local-zone":   {LeaderID: "go-node-3", LeaderAddr: "[::1]:9443", LastUpdated: at.In(cet)},
		"resigned":            {},
	}
	for name, rec := range golden {
		data, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name+".json"), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// decoded is what Go saw, in a form the Rust test can compare exactly.
type decoded struct {
	LeaderID      string   `json:"leaderID"`
	LeaderAddr    string   `json:"leaderAddr"`
	UnixNano      int64    `json:"unixNano"`
	IsZero        bool     `json:"isZero"`
	RFC3339Nano   string   `json:"rfc3339Nano"`
	FieldsPresent []string `json:"fieldsPresent"`
}

func decode() error {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		line := in.Bytes()
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(line, &fields); err != nil {
			return fmt.Errorf("%s: not a JSON object: %v", line, err)
		}
		// Go would read a missing lastUpdated as the zero time, i.e. "resigned": it must be there.
		if _, ok := fields["lastUpdated"]; !ok {
			return fmt.Errorf("%s: lastUpdated is missing", line)
		}
		var rec LeaderRecord
		if err := json.Unmarshal(line, &rec); err != nil {
			return fmt.Errorf("%s: %v", line, err)
		}
		present := []string{}
		for _, k := range []string{"leaderID", "leaderAddr", "lastUpdated"} {
			if _, ok := fields[k]; ok {
				present = append(present, k)
			}
		}
		out, _ := json.Marshal(decoded{
			LeaderID: rec.LeaderID, LeaderAddr: rec.LeaderAddr, IsZero: rec.LastUpdated.IsZero(),
			UnixNano: rec.LastUpdated.UnixNano(), RFC3339Nano: rec.LastUpdated.Format(time.RFC3339Nano),
			FieldsPresent: present,
		})
		fmt.Println(string(out))
	}
	return in.Err()
}

func main() {
	var err error
	switch {
	case len(os.Args) == 3 && os.Args[1] == "encode":
		err = encode(os.Args[2])
	case len(os.Args) == 2 && os.Args[1] == "decode":
		err = decode()
	default:
		err = fmt.Errorf("usage: leaderrecord encode DIR | leaderrecord decode")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "leaderrecord:", err)
		os.Exit(1)
	}
}
