package mirror

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ACLStatus is the state of the topic ACL sync (Flow.SyncTopicACLs).
type ACLStatus struct {
	// State is "" before the first sync (or with the sync off), "ok" after
	// a sync that worked, "unsupported" while a cluster answers that it has
	// no ACLs (security disabled, or no ACL API): the flow goes on, and the
	// sync is tried again every refresh, quietly.
	State string
	// Reason says which cluster answered what, when State is "unsupported".
	Reason string
	// Created counts the ACLs this worker created on the target.
	Created int64
	// LastSync is when the last sync that worked ended.
	LastSync time.Time
}

// ACL sync states.
const (
	ACLStateOK          = "ok"
	ACLStateUnsupported = "unsupported"
)

// topicACL is one ACL binding on a topic resource.
type topicACL struct {
	Pattern    kmsg.ACLResourcePatternType // LITERAL or PREFIXED
	Name       string                      // topic, or prefix
	Principal  string                      // "User:alice"
	Host       string                      // "*" or an address
	Operation  kmsg.ACLOperation
	Permission kmsg.ACLPermissionType
}

func compareACL(a, b topicACL) int {
	return cmp.Or(cmp.Compare(a.Pattern, b.Pattern), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Principal, b.Principal),
		cmp.Compare(a.Host, b.Host), cmp.Compare(a.Operation, b.Operation), cmp.Compare(a.Permission, b.Permission))
}

// remoteACLOperation is the operation an ALLOW ACL grants on a remote
// topic, and false for operations not synced. Remote topics are written,
// created, altered and deleted only by the mirror, so only read-side grants
// go over: ALL becomes READ (as MM2 does), READ, DESCRIBE and
// DESCRIBE_CONFIGS stay, and the rest are dropped — WRITE as in MM2 (turning
// it into READ would widen a writer's access), and CREATE, DELETE, ALTER,
// ALTER_CONFIGS, IDEMPOTENT_WRITE as well.
func remoteACLOperation(op kmsg.ACLOperation) (kmsg.ACLOperation, bool) {
	switch op {
	case kmsg.ACLOperationAll, kmsg.ACLOperationRead:
		return kmsg.ACLOperationRead, true
	case kmsg.ACLOperationDescribe, kmsg.ACLOperationDescribeConfigs:
		return op, true
	}
	return 0, false
}

// remoteTopicACLs maps the source's topic ACLs to the ACLs the target should
// hold for the remote topics, sorted and without duplicates:
//
//   - only ALLOW ACLs; DENY ACLs are not copied (a DENY naming a remote
//     topic would have to be kept in step with the source to be safe, and
//     MM2 does not copy them either);
//   - operations through remoteACLOperation;
//   - a LITERAL ACL only on a mirrored topic (mirrored maps source topic to
//     remote topic), moved to its remote name; the literal wildcard "*" is
//     not copied, as it would cover the target's own topics;
//   - a PREFIXED ACL only when prefixRemote maps its prefix to a prefix of
//     the remote names (prefix naming: "ord" → "east.ord", which covers
//     exactly the remote topics of the source topics it covered), and only
//     if it covers a mirrored topic.
func remoteTopicACLs(src []topicACL, mirrored map[string]string, prefixRemote func(string) (string, bool)) []topicACL {
	var out []topicACL
	for _, a := range src {
		if a.Permission != kmsg.ACLPermissionTypeAllow {
			continue
		}
		op, ok := remoteACLOperation(a.Operation)
		if !ok {
			continue
		}
		var name string
		switch a.Pattern {
		case kmsg.ACLResourcePatternTypeLiteral:
			if name, ok = mirrored[a.Name]; !ok {
				continue
			}
		case kmsg.ACLResourcePatternTypePrefixed:
			if name, ok = prefixRemote(a.Name); !ok {
				continue
			}
			covers := false
			for topic := range mirrored {
				if strings.HasPrefix(topic, a.Name) {
					covers = true
					break
				}
			}
			if !covers {
				continue
			}
		default:
			continue
		}
		out = append(out, topicACL{Pattern: a.Pattern, Name: name, Principal: a.Principal, Host: a.Host,
			Operation: op, Permission: kmsg.ACLPermissionTypeAllow})
	}
	slices.SortFunc(out, compareACL)
	return slices.Compact(out)
}

// remotePrefix maps a source prefix to the prefix of the remote names of
// the topics it covers, if the naming policy renames by prepending: remote
// names must extend the mapped prefix as topic names extend the source
// prefix, and the mapped prefix must differ from the source one. Under
// identity naming it does not: the same prefix on the target would also
// cover the target's own topics, so PREFIXED ACLs are not synced there.
func (w *Worker) remotePrefix(prefix string) (string, bool) {
	alias := w.flow.SourceAlias
	rp := w.policy.RemoteTopic(alias, prefix)
	if rp == prefix || !strings.HasSuffix(rp, prefix) {
		return "", false
	}
	for _, suffix := range []string{"x", ".y", "_z-0"} {
		if w.policy.RemoteTopic(alias, prefix+suffix) != rp+suffix {
			return "", false
		}
	}
	return rp, true
}

// aclsUnsupported reports whether err says the cluster has no ACLs: security
// is disabled, or it does not know the ACL requests (franz-go refuses to
// send a request the broker did not list in ApiVersions, with an error it
// does not export, hence the text match).
func aclsUnsupported(err error) bool {
	return errors.Is(err, kerr.SecurityDisabled) ||
		errors.Is(err, kerr.UnsupportedVersion) || strings.Contains(err.Error(), "broker is too old")
}

// describeTopicACLs returns every ALLOW ACL on topic resources of cl's
// cluster, literal and prefixed.
func describeTopicACLs(ctx context.Context, cl *kgo.Client) ([]topicACL, error) {
	req := kmsg.NewPtrDescribeACLsRequest()
	req.ResourceType = kmsg.ACLResourceTypeTopic
	req.ResourcePatternType = kmsg.ACLResourcePatternTypeAny
	req.Operation = kmsg.ACLOperationAny
	req.PermissionType = kmsg.ACLPermissionTypeAllow
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		if resp.ErrorMessage != nil {
			return nil, kafkaErr(err, *resp.ErrorMessage)
		}
		return nil, err
	}
	var out []topicACL
	for _, r := range resp.Resources {
		if r.ResourceType != kmsg.ACLResourceTypeTopic {
			continue
		}
		for _, a := range r.ACLs {
			out = append(out, topicACL{Pattern: r.ResourcePatternType, Name: r.ResourceName, Principal: a.Principal,
				Host: a.Host, Operation: a.Operation, Permission: a.PermissionType})
		}
	}
	return out, nil
}

// syncACLs copies the mirrored topics' ALLOW ACLs to their remote topics
// (remoteTopicACLs), creating on the target only those it lacks. ACLs are
// only ever created, never deleted: an ACL removed on the source keeps its
// copy on the target (as in MM2). A cluster without ACLs is noted once, at
// info, in Status.ACLs; it never fails the refresh.
func (w *Worker) syncACLs(ctx context.Context) {
	if !w.flow.SyncTopicACLs {
		return
	}
	mirrored := map[string]string{}
	w.mu.Lock()
	for name, ts := range w.topics {
		if ts.ready && !ts.gone {
			mirrored[name] = ts.remote
		}
	}
	w.mu.Unlock()
	if len(mirrored) == 0 {
		return
	}
	srcACLs, err := describeTopicACLs(ctx, w.srcCl)
	if err != nil {
		w.aclFailed("source", "describing source topic ACLs", err)
		return
	}
	want := remoteTopicACLs(srcACLs, mirrored, w.remotePrefix)
	var missing []topicACL
	if len(want) > 0 {
		have, err := describeTopicACLs(ctx, w.tgtCl)
		if err != nil {
			w.aclFailed("target", "describing target topic ACLs", err)
			return
		}
		for _, a := range want {
			if !slices.ContainsFunc(have, func(h topicACL) bool { return compareACL(a, h) == 0 }) {
				missing = append(missing, a)
			}
		}
	}
	created := 0
	if len(missing) > 0 {
		req := kmsg.NewPtrCreateACLsRequest()
		for _, a := range missing {
			c := kmsg.NewCreateACLsRequestCreation()
			c.ResourceType, c.ResourceName, c.ResourcePatternType = kmsg.ACLResourceTypeTopic, a.Name, a.Pattern
			c.Principal, c.Host, c.Operation, c.PermissionType = a.Principal, a.Host, a.Operation, a.Permission
			req.Creations = append(req.Creations, c)
		}
		resp, err := req.RequestWith(ctx, w.tgtCl)
		if err != nil {
			w.aclFailed("target", "creating topic ACLs on the target", err)
			return
		}
		for i, r := range resp.Results {
			if i >= len(missing) {
				break
			}
			a := missing[i]
			if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
				if r.ErrorMessage != nil {
					err = kafkaErr(err, *r.ErrorMessage)
				}
				if aclsUnsupported(err) {
					w.aclFailed("target", "creating topic ACLs on the target", err)
					return
				}
				w.noteErr(KindACL, fmt.Errorf("creating ACL %s %s on %s %s of the target: %w", a.Principal, a.Operation, a.Pattern, a.Name, err))
				continue
			}
			created++
			w.log.Info("synced topic ACL", "remote_topic", a.Name, "pattern", a.Pattern.String(), "principal", a.Principal,
				"host", a.Host, "operation", a.Operation.String())
		}
		w.m.aclsCreated.WithLabelValues(w.flow.Name()).Add(float64(created))
	}
	w.mu.Lock()
	w.acl.State, w.acl.Reason = ACLStateOK, ""
	w.acl.Created += int64(created)
	w.acl.LastSync = time.Now()
	w.mu.Unlock()
}

// aclFailed records a failed ACL request: a cluster without ACLs sets the
// "unsupported" state, logged once at info on entering it; anything else is
// a KindACL error.
func (w *Worker) aclFailed(side, what string, err error) {
	if !aclsUnsupported(err) {
		w.noteErr(KindACL, fmt.Errorf("%s: %w", what, err))
		return
	}
	reason := fmt.Sprintf("the %s does not support ACLs: %v", side, err)
	w.mu.Lock()
	first := w.acl.State != ACLStateUnsupported
	w.acl.State, w.acl.Reason = ACLStateUnsupported, reason
	w.mu.Unlock()
	if first {
		w.log.Info("topic ACLs are not synced: the cluster does not support ACLs; the flow goes on, and the sync is retried quietly",
			"cluster", side, "err", err)
	}
}
