package mirror

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/internal/kdrtest"
)

func deleteTopic(t *testing.T, c *cluster, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resps, err := c.adm.DeleteTopics(ctx, name)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		t.Fatalf("deleting %s: %v", name, err)
	}
}

// startLoggedWorker is startWorker with the worker's logs kept in a buffer.
func startLoggedWorker(t *testing.T, f Flow) (*running, *kdrtest.Output) {
	t.Helper()
	logs := &kdrtest.Output{}
	r := startWorkerLogging(t, f, slog.New(slog.NewTextHandler(logs, nil)))
	return r, logs
}

func TestMirrorTopicDeletions(t *testing.T) {
	for _, enabled := range []bool{true, false} {
		name := "disabled"
		if enabled {
			name = "enabled"
		}
		t.Run(name, func(t *testing.T) {
			east, west := startCluster(t), startCluster(t)
			east.createTopic("orders", 2)
			east.createTopic("kept", 1)
			// A topic of the target's own, of the same name: never the
			// flow's to delete.
			west.createTopic("orders", 1)
			f := testFlow(east, west, "east", "west")
			f.SyncTopicDeletions = enabled
			w, logs := startLoggedWorker(t, f)
			east.produce(seqRecords("orders", 2, 0, 6)...)
			east.produce(seqRecords("kept", 1, 0, 3)...)
			waitCount(t, west, "east.orders", 6, 30*time.Second)
			waitCount(t, west, "east.kept", 3, 30*time.Second)

			start := time.Now()
			deleteTopic(t, east, "orders")
			if enabled {
				kdrtest.Eventually(t, 2*f.RefreshInterval+2*time.Second, func() (bool, string) {
					return !west.hasTopic("east.orders"), "east.orders still on the target"
				})
				t.Logf("remote topic deleted %s after its source topic (refresh interval %s)", time.Since(start), f.RefreshInterval)
				// The worker counts the deletion once the target answers,
				// a moment after the topic is gone.
				kdrtest.Eventually(t, 10*time.Second, func() (bool, string) {
					got := metricSum(t, w.reg, "kdr_mirror_topics_deleted_total", nil)
					ts, _ := w.Status().Topic("orders")
					return got == 1 && ts.Gone && ts.RemoteDeleted && strings.Contains(logs.String(), "deleted remote topic"),
						fmt.Sprintf("kdr_mirror_topics_deleted_total = %v, status of orders %+v", got, ts)
				})
			} else {
				waitRefreshes(t, 4, w)
				if !west.hasTopic("east.orders") {
					t.Error("east.orders deleted with SyncTopicDeletions off")
				}
				if got := metricSum(t, w.reg, "kdr_mirror_topics_deleted_total", nil); got != 0 {
					t.Errorf("kdr_mirror_topics_deleted_total = %v, want 0", got)
				}
			}
			waitRefreshes(t, 2, w)
			for _, keep := range []string{"orders", "east.kept"} {
				if !west.hasTopic(keep) {
					t.Errorf("target topic %s was deleted; it is not the deleted topic's remote", keep)
				}
			}
			// The flow goes on.
			east.produce(seqRecords("kept", 1, 3, 2)...)
			waitCount(t, west, "east.kept", 5, 30*time.Second)

			// kdr brokers have no ACL API: the ACL sync says so once, at
			// info, and does not stop the flow.
			st := w.Status()
			if st.ACLs.State != ACLStateUnsupported || st.ACLs.Reason == "" {
				t.Errorf("ACL status against kdr: %+v", st.ACLs)
			}
			if n := strings.Count(logs.String(), "topic ACLs are not synced"); n != 1 {
				t.Errorf("the unsupported ACL sync was logged %d times, want once:\n%s", n, logs)
			}
			if e := st.Errors[KindACL]; e.Count != 0 {
				t.Errorf("acl errors: %+v", e)
			}
		})
	}
}

// fakeCluster is a kfake cluster, which implements the ACL APIs.
func fakeCluster(t *testing.T) *cluster {
	t.Helper()
	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	addr := kc.ListenAddrs()[0]
	cl := startClient(t, addr)
	return &cluster{t: t, addr: addr, cl: cl, adm: kadm.NewClient(cl)}
}

func createACLs(t *testing.T, c *cluster, acls ...topicACL) {
	t.Helper()
	req := kmsg.NewPtrCreateACLsRequest()
	for _, a := range acls {
		cr := kmsg.NewCreateACLsRequestCreation()
		cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = kmsg.ACLResourceTypeTopic, a.Name, a.Pattern
		cr.Principal, cr.Host, cr.Operation, cr.PermissionType = a.Principal, a.Host, a.Operation, a.Permission
		req.Creations = append(req.Creations, cr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, c.cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.Results {
		if r.ErrorCode != 0 {
			t.Fatalf("creating ACLs: code %d", r.ErrorCode)
		}
	}
}

// allTopicACLs lists every topic ACL of c, ALLOW and DENY.
func allTopicACLs(t *testing.T, c *cluster) []topicACL {
	t.Helper()
	req := kmsg.NewPtrDescribeACLsRequest()
	req.ResourceType, req.ResourcePatternType = kmsg.ACLResourceTypeTopic, kmsg.ACLResourcePatternTypeAny
	req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, c.cl)
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("describing ACLs: %v (code %d)", err, resp.ErrorCode)
	}
	var out []topicACL
	for _, r := range resp.Resources {
		for _, a := range r.ACLs {
			out = append(out, topicACL{Pattern: r.ResourcePatternType, Name: r.ResourceName, Principal: a.Principal, Host: a.Host,
				Operation: a.Operation, Permission: a.PermissionType})
		}
	}
	slices.SortFunc(out, compareACL)
	return out
}

func allow(pattern kmsg.ACLResourcePatternType, name, principal string, op kmsg.ACLOperation) topicACL {
	return topicACL{Pattern: pattern, Name: name, Principal: principal, Host: "*", Operation: op, Permission: kmsg.ACLPermissionTypeAllow}
}

const (
	literal  = kmsg.ACLResourcePatternTypeLiteral
	prefixed = kmsg.ACLResourcePatternTypePrefixed
)

func TestMirrorSyncTopicACLs(t *testing.T) {
	east, west := fakeCluster(t), fakeCluster(t)
	east.createTopic("orders", 1)
	east.createTopic("other", 1)
	deny := allow(literal, "orders", "User:bob", kmsg.ACLOperationRead)
	deny.Permission = kmsg.ACLPermissionTypeDeny
	createACLs(t, east,
		allow(literal, "orders", "User:alice", kmsg.ACLOperationAll),
		allow(literal, "orders", "User:frank", kmsg.ACLOperationWrite), // not copied, as MM2
		deny,
		allow(prefixed, "ord", "User:carol", kmsg.ACLOperationDescribe),
		allow(literal, "other", "User:dave", kmsg.ACLOperationRead), // not mirrored
		allow(literal, "orders", "User:erin", kmsg.ACLOperationDelete),
	)
	f := testFlow(east, west, "east", "west")
	f.Topics = "orders"
	w := startWorker(t, f)
	want := []topicACL{
		allow(literal, "east.orders", "User:alice", kmsg.ACLOperationRead),
		allow(prefixed, "east.ord", "User:carol", kmsg.ACLOperationDescribe),
	}
	slices.SortFunc(want, compareACL)
	start := time.Now()
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		got := allTopicACLs(t, west)
		return slices.Equal(got, want), "target ACLs " + aclsString(got)
	})
	t.Logf("ACLs synced %s after the start", time.Since(start))
	waitRefreshes(t, 3, w)
	if got := allTopicACLs(t, west); !slices.Equal(got, want) {
		t.Errorf("after more refreshes, target ACLs %s", aclsString(got))
	}
	st := w.Status().ACLs
	if st.State != ACLStateOK || st.Created != 2 {
		t.Errorf("ACL status %+v, want ok and 2 created (re-runs create nothing)", st)
	}
	if got := metricSum(t, w.reg, "kdr_mirror_acls_created_total", nil); got != 2 {
		t.Errorf("kdr_mirror_acls_created_total = %v, want 2", got)
	}
	if e := w.Status().Errors[KindACL]; e.Count != 0 {
		t.Errorf("acl errors: %+v", e)
	}
}

func TestMirrorSyncTopicACLsOff(t *testing.T) {
	east, west := fakeCluster(t), fakeCluster(t)
	east.createTopic("orders", 1)
	createACLs(t, east, allow(literal, "orders", "User:alice", kmsg.ACLOperationRead))
	f := testFlow(east, west, "east", "west")
	f.SyncTopicACLs = false
	w := startWorker(t, f)
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) { return west.hasTopic("east.orders"), "east.orders not created" })
	waitRefreshes(t, 3, w)
	if got := allTopicACLs(t, west); len(got) != 0 {
		t.Errorf("ACLs synced with SyncTopicACLs off: %s", aclsString(got))
	}
}

func aclsString(acls []topicACL) string {
	var b strings.Builder
	for _, a := range acls {
		b.WriteString("[" + a.Pattern.String() + " " + a.Name + " " + a.Principal + "@" + a.Host + " " + a.Operation.String() + " " + a.Permission.String() + "]")
	}
	return b.String()
}

func TestRemoteTopicACLs(t *testing.T) {
	mirrored := map[string]string{"orders": "east.orders", "payments": "east.payments"}
	prefixW := &Worker{flow: Flow{SourceAlias: "east"}, policy: Flow{Naming: NamingPrefix}.Policy()}
	identityW := &Worker{flow: Flow{SourceAlias: "east"}, policy: Flow{Naming: NamingIdentity}.Policy()}
	deny := allow(literal, "orders", "User:bob", kmsg.ACLOperationRead)
	deny.Permission = kmsg.ACLPermissionTypeDeny
	src := []topicACL{
		allow(literal, "orders", "User:alice", kmsg.ACLOperationWrite),
		allow(literal, "orders", "User:alice", kmsg.ACLOperationRead), // the same grant once mapped
		allow(literal, "orders", "User:ops", kmsg.ACLOperationAll),
		allow(literal, "orders", "User:erin", kmsg.ACLOperationAlter),
		allow(literal, "payments", "User:x", kmsg.ACLOperationDescribeConfigs),
		allow(literal, "*", "User:any", kmsg.ACLOperationRead),
		allow(literal, "unmirrored", "User:y", kmsg.ACLOperationRead),
		allow(prefixed, "pay", "User:carol", kmsg.ACLOperationRead),
		allow(prefixed, "zzz", "User:z", kmsg.ACLOperationRead), // covers no mirrored topic
		deny,
	}
	got := remoteTopicACLs(src, mirrored, prefixW.remotePrefix)
	want := []topicACL{
		allow(literal, "east.orders", "User:alice", kmsg.ACLOperationRead),
		allow(literal, "east.orders", "User:ops", kmsg.ACLOperationRead),
		allow(literal, "east.payments", "User:x", kmsg.ACLOperationDescribeConfigs),
		allow(prefixed, "east.pay", "User:carol", kmsg.ACLOperationRead),
	}
	slices.SortFunc(want, compareACL)
	if !slices.Equal(got, want) {
		t.Errorf("prefix naming:\n got %s\nwant %s", aclsString(got), aclsString(want))
	}

	// Identity naming: literal ACLs go over unchanged in name; a prefix
	// would cover the target's own topics too, so prefixed ones do not.
	idMirrored := map[string]string{"orders": "orders", "payments": "payments"}
	got = remoteTopicACLs(src, idMirrored, identityW.remotePrefix)
	for _, a := range got {
		if a.Pattern == prefixed {
			t.Errorf("identity naming synced a prefixed ACL: %s", aclsString([]topicACL{a}))
		}
	}
	if !slices.Contains(got, allow(literal, "orders", "User:alice", kmsg.ACLOperationRead)) {
		t.Errorf("identity naming: %s", aclsString(got))
	}
	if rp, ok := prefixW.remotePrefix(""); !ok || rp != "east." {
		t.Errorf("remotePrefix(\"\") = %q, %v", rp, ok)
	}
}
