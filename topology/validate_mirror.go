package topology

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/kdr-io/kdr/internal/yamlschema"
	"github.com/kdr-io/kdr/mirror"
	"github.com/kdr-io/kdr/mirror/naming"
)

// settingBlock is one place a flow's settings can be written: the
// topology's mirror block, a pattern's, or a hub-and-spoke up/down
// selection. v is a MirrorSettings or TopicSelection.
type settingBlock struct {
	path string
	v    reflect.Value
}

// lookup finds the block's field of Go name goField (the names match
// mirror.Flow's), its YAML key and value.
func (b settingBlock) lookup(goField string) (key string, val reflect.Value, ok bool) {
	sf, found := b.v.Type().FieldByName(goField)
	if !found {
		return "", reflect.Value{}, false
	}
	return sf.Tag.Get("mapstructure"), b.v.FieldByIndex(sf.Index), true
}

var patternFields = map[string]bool{"Topics": true, "TopicsExclude": true, "Groups": true, "GroupsExclude": true}

// locate maps a mirror.FieldError's Field ("RefreshInterval",
// "Topics/TopicsExclude") to the YAML path that set it: the nearest block
// (blocks are nearest first) that sets the field; of a pair, the one whose
// patterns do not compile. "" if no block sets it.
func locate(field string, blocks []settingBlock) string {
	var fallback string
	for _, part := range strings.Split(field, "/") {
		for _, b := range blocks {
			key, val, ok := b.lookup(part)
			if !ok || val.IsZero() {
				continue
			}
			p := b.path + "." + key
			if patternFields[part] {
				if _, err := naming.ParsePatterns(val.String()); err != nil {
					return p
				}
			}
			if fallback == "" {
				fallback = p
			}
			break // nearer blocks override the rest
		}
	}
	return fallback
}

func settingHint(field string) string {
	switch field {
	case "Naming":
		return `naming is "prefix" (east.orders, MM2's default) or "identity" (orders keeps its name)`
	case "Separator":
		return `the separator goes between alias and topic, e.g. "." or "_"`
	case "Topics/TopicsExclude":
		return "comma-separated RE2 regexes, each matching a whole topic name, e.g. orders.*, payments"
	case "Groups/GroupsExclude":
		return "comma-separated RE2 regexes, each matching a whole group name, e.g. billing-.*"
	case "HeartbeatInterval":
		return `a duration such as "1s", or negative ("-1s") to disable heartbeats`
	case "BatchRecords":
		return "records copied per cycle, 1 to 1000000"
	case "ReplicationFactor":
		return "0 copies the source topic's"
	case "OffsetSyncsLocation":
		return `with "target" the workers need only read the source`
	}
	if strings.HasSuffix(field, "Interval") || strings.HasSuffix(field, "Timeout") {
		return `a positive duration such as "5s" or "1m"`
	}
	return ""
}

// probeFlow is a valid flow to apply one block's settings to, so that
// mirror.Flow.Validate judges that block alone.
func probeFlow() mirror.Flow {
	f := mirror.DefaultFlow()
	f.SourceAlias, f.TargetAlias = "a", "b"
	f.Source.Brokers, f.Target.Brokers = []string{"127.0.0.1:1"}, []string{"127.0.0.1:2"}
	return f
}

// flowErrors reports mirror.Flow.Validate's errors at the YAML keys that
// set the fields; a field no block sets is reported at fallback (skipped if
// fallback is ""). Aliases and brokers come from the clusters, which are
// checked on their own.
func (c *checker) flowErrors(err error, blocks []settingBlock, fallback string) {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		if e == nil {
			continue
		}
		var fe *mirror.FieldError
		if !errors.As(e, &fe) {
			if fallback != "" {
				c.add(fallback, e.Error(), "")
			}
			continue
		}
		switch fe.Field {
		case "SourceAlias", "TargetAlias", "Source.Brokers", "Target.Brokers":
			continue
		}
		if p := locate(fe.Field, blocks); p != "" {
			c.add(p, fe.Problem, settingHint(fe.Field))
		} else if fallback != "" {
			c.add(fallback, fe.Field+": "+fe.Problem, settingHint(fe.Field))
		}
	}
}

// mirrorBlocks checks every block of mirror settings on its own, so that a
// bad default is reported even where no flow uses it.
func (c *checker) mirrorBlocks(t *Topology) {
	c.mirrorBlock("mirror", t.Mirror)
	for i, p := range t.Replication {
		pp := yamlschema.IndexPath("replication", i)
		c.mirrorBlock(pp+".mirror", p.Mirror)
		for _, s := range []struct {
			key string
			sel *TopicSelection
		}{{"up", p.Up}, {"down", p.Down}} {
			if s.sel == nil {
				continue
			}
			f := probeFlow()
			MirrorSettings{Topics: s.sel.Topics, TopicsExclude: s.sel.TopicsExclude}.apply(&f)
			c.flowErrors(f.Validate(), []settingBlock{{pp + "." + s.key, reflect.ValueOf(*s.sel)}}, "")
			c.explicitZeros(pp+"."+s.key, reflect.ValueOf(*s.sel))
		}
	}
}

func (c *checker) mirrorBlock(path string, m MirrorSettings) {
	f := probeFlow()
	m.apply(&f)
	c.flowErrors(f.Validate(), []settingBlock{{path, reflect.ValueOf(m)}}, "")
	if m.Workers < 0 {
		c.add(path+".workers", fmt.Sprintf("%d: want 1 or more (0 means 1)", m.Workers), "workers is how many processes share each flow's partitions")
	}
	c.explicitZeros(path, reflect.ValueOf(m))
}

// explicitZeros reports keys of a settings block written with a zero value
// ("0s", 0, ""), which would silently inherit instead of doing what they
// say. Workers and replicationFactor are exempt: their 0 has a meaning.
func (c *checker) explicitZeros(path string, v reflect.Value) {
	for i := range v.NumField() {
		sf := v.Type().Field(i)
		key := path + "." + sf.Tag.Get("mapstructure")
		if !v.Field(i).IsZero() || !c.idx.Has(key) || sf.Name == "Workers" || sf.Name == "ReplicationFactor" {
			continue
		}
		inherit := "or remove the key to inherit"
		switch {
		case sf.Type == durationType && sf.Name == "CommitInterval":
			c.add(key, "0s: must be positive", `give a positive duration such as "100ms" (kdr mirror run --commit-interval 0 commits after every cycle), `+inherit)
		case sf.Type == durationType && sf.Name == "HeartbeatInterval":
			c.add(key, "0s: must not be zero", `give a positive duration such as "1s", a negative one to disable heartbeats, `+inherit)
		case sf.Type == durationType:
			c.add(key, "0s: must be positive", `give a positive duration such as "5s", `+inherit)
		case sf.Type.Kind() == reflect.String:
			c.add(key, "empty", "give a value, "+inherit)
		case sf.Type.Kind() >= reflect.Int && sf.Type.Kind() <= reflect.Int64:
			c.add(key, "0: must be positive", "give a positive number, "+inherit)
		}
	}
}

// flowSettings validates every expanded flow with mirror.Flow.Validate,
// which sees the settings as merged (selection over pattern over
// topology over mirror.DefaultFlow).
func (c *checker) flowSettings(t *Topology, flows []FlowSpec) {
	for _, f := range flows {
		p := t.Replication[f.Pattern]
		pp := yamlschema.IndexPath("replication", f.Pattern)
		var blocks []settingBlock
		if p.Type == HubAndSpoke {
			sel, key := p.Down, "down"
			if f.Flow.TargetAlias == p.Hub {
				sel, key = p.Up, "up"
			}
			if sel != nil {
				blocks = append(blocks, settingBlock{pp + "." + key, reflect.ValueOf(*sel)})
			}
		}
		blocks = append(blocks, settingBlock{pp + ".mirror", reflect.ValueOf(p.Mirror)}, settingBlock{"mirror", reflect.ValueOf(t.Mirror)})
		c.flowErrors(f.Flow.Validate(), blocks, pp)
	}
}
