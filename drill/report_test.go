package drill

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestDrillReportAlwaysHasItsLists: report.json of a drill where nothing
// went wrong (no promote, nothing undelivered or reordered) carries every
// documented key, the counts as 0 and the lists as [], not null or absent.
func TestDrillReportAlwaysHasItsLists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "report.json")
	if err := writeJSON(path, &Report{Scenario: "clean", Passed: true}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"unreplicated_records": "0", "unreplicated_read": "false", "unreplicated_ids": "[]",
		"undelivered_ids": "[]", "reorder_examples": "[]", "lost_records": "[]", "duplicated_records": "[]",
	}
	for k, v := range want {
		if string(got[k]) != v {
			t.Errorf("report.json %s = %q, want %s\n%s", k, got[k], v, b)
		}
	}
}
