package topology

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"time"

	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/kdr-io/kdr/internal/yamlschema"
)

// Defaults applied by Load, Parse and ApplyDefaults. Mirror settings have
// none here: Flows takes them from mirror.DefaultFlow.
const (
	DefaultBrokers        = 3
	DefaultHost           = "127.0.0.1"
	DefaultMaxLagRecords  = 10000
	DefaultMaxLag         = 30 * time.Second
	DefaultFenceTimeout   = 30 * time.Second
	DefaultDrainTimeout   = 2 * time.Minute
	DefaultPromoteTimeout = 30 * time.Second
	DefaultConsulAddress  = "127.0.0.1:8500"
)

// Load reads, decodes, defaults and validates the topology file at path.
// An invalid document gives every problem found, each an *Error naming
// file, line, column and field, joined with errors.Join (see Problems).
func Load(path string) (*Topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	return Parse(data, path)
}

// Parse is Load for a document already in memory; file names it in errors.
func Parse(data []byte, file string) (*Topology, error) {
	c := &checker{file: file}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlschema.SyntaxError(file, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Tag == "!!null" {
		return nil, &Error{File: file, Line: 1, Column: 1, Problem: "empty document",
			Hint: "start with \"apiVersion: " + APIVersion + "\" and \"kind: " + Kind + "\"; see topology/examples"}
	}
	root := doc.Content[0]
	idx, problems := yamlschema.Check(root, reflect.TypeFor[Topology](), "mapstructure")
	c.idx = idx
	errs, fatal := yamlschema.Errors(file, problems)
	c.errs = append(c.errs, errs...)
	if fatal {
		// Values of the wrong type: decoding would fail or guess.
		return nil, yamlschema.Join(c.errs)
	}
	t, err := decode(data)
	if err != nil {
		c.addAt(yamlschema.Position{Line: root.Line, Column: root.Column}, "", err.Error(), "")
		return nil, yamlschema.Join(c.errs)
	}
	t.File = file
	t.applyDefaults(idx)
	c.validate(t)
	if err := yamlschema.Join(c.errs); err != nil {
		return nil, err
	}
	return t, nil
}

// decode reads the document with viper into a Topology. The schema walk has
// checked the types already, so this fails only on what it cannot see.
func decode(data []byte) (*Topology, error) {
	// Keys never contain NUL; the default "." would split a (rejected, but
	// still decoded) key such as "mirror.naming" into a path.
	v := viper.NewWithOptions(viper.KeyDelimiter("\x00"))
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, err
	}
	var t Topology
	if err := v.Unmarshal(&t, viper.DecodeHook(durationHook)); err != nil {
		return nil, err
	}
	return &t, nil
}

// durationHook decodes "5s" into a time.Duration. A bare number is refused
// rather than read as nanoseconds.
func durationHook(_, to reflect.Type, data any) (any, error) {
	if to != durationType {
		return data, nil
	}
	switch d := data.(type) {
	case string:
		return time.ParseDuration(d)
	case time.Duration:
		return d, nil
	}
	return nil, fmt.Errorf("%v is not a duration such as 5s", data)
}

var durationType = reflect.TypeFor[time.Duration]()

// ApplyDefaults sets every unset (zero) field that has a default: a local
// cluster's brokers (3), host (127.0.0.1) and data dir (its name); the
// coordination backend (file), Consul address (127.0.0.1:8500) and key
// prefix ("kdr/<metadata.name>"); the failover lag bounds (10000 records,
// 30s) and step timeouts (fence 30s, drain 2m, promote 30s). Load and Parse
// apply them, except where the file sets a zero explicitly, which
// validation then judges.
func (t *Topology) ApplyDefaults() { t.applyDefaults(nil) }

func (t *Topology) applyDefaults(idx *yamlschema.Index) {
	unset := func(path string, zero bool) bool { return zero && !idx.Has(path) }
	for i := range t.Clusters {
		c := &t.Clusters[i]
		path := yamlschema.IndexPath("clusters", i) + ".local"
		if c.Local == nil {
			if !idx.Written(path) {
				continue
			}
			c.Local = &LocalCluster{} // "local:" with nothing under it
		}
		l := c.Local
		if unset(path+".brokers", l.Brokers == 0) {
			l.Brokers = DefaultBrokers
		}
		if l.Host == "" {
			l.Host = DefaultHost
		}
		if l.DataDir == "" {
			l.DataDir = c.Name
		}
	}
	f := &t.Failover
	if f.Coordination.Backend == "" {
		f.Coordination.Backend = BackendFile
	}
	if f.Coordination.Consul.Address == "" {
		f.Coordination.Consul.Address = DefaultConsulAddress
	}
	if f.Coordination.Consul.KeyPrefix == "" {
		f.Coordination.Consul.KeyPrefix = "kdr/" + t.Metadata.Name
	}
	if unset("failover.maxLagRecords", f.MaxLagRecords == 0) {
		f.MaxLagRecords = DefaultMaxLagRecords
	}
	dur := func(path string, d *time.Duration, def time.Duration) {
		if unset(path, *d == 0) {
			*d = def
		}
	}
	dur("failover.maxLag", &f.MaxLag, DefaultMaxLag)
	dur("failover.timeouts.fence", &f.Timeouts.Fence, DefaultFenceTimeout)
	dur("failover.timeouts.drain", &f.Timeouts.Drain, DefaultDrainTimeout)
	dur("failover.timeouts.promote", &f.Timeouts.Promote, DefaultPromoteTimeout)
}
