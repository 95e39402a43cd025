package up

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// printEndpoints writes where everything is, once healthy.
func printEndpoints(w io.Writer, e *Endpoints, extra []ExtraEndpoint, l Layout) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\nTopology %s is up.\n\n", e.Topology)
	for _, c := range e.Clusters {
		kind := "existing"
		if c.Local {
			kind = "local"
		}
		fmt.Fprintf(tw, "cluster %s (%s)\tbootstrap\t%s\n", c.Name, kind, strings.Join(c.Bootstrap, ","))
		for _, b := range c.Brokers {
			fmt.Fprintf(tw, "\tbroker %d metrics\t%s\n", b.ID, b.MetricsURL)
		}
	}
	for _, f := range e.Flows {
		fmt.Fprintf(tw, "flow %s\tgroup\t%s\n", f.Name, f.Group)
		for _, wk := range f.Workers {
			fmt.Fprintf(tw, "\tworker %s metrics\t%s\n", wk.InstanceID, wk.MetricsURL)
		}
	}
	if e.MetricsURL != "" {
		fmt.Fprintf(tw, "failover metrics\t\t%s\n", e.MetricsURL)
	}
	for _, x := range extra {
		fmt.Fprintf(tw, "%s\t\t%s\n", x.Name, x.URL)
	}
	fmt.Fprintf(tw, "state dir\t\t%s\n", e.StateDir)
	fmt.Fprintf(tw, "logs\t\t%s\n", l.Logs())
	fmt.Fprintf(tw, "endpoints\t\t%s\n", l.Endpoints())
	tw.Flush()
	fmt.Fprintln(w, "\nPress Ctrl-C to stop.")
}
