package console

import (
	"context"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/compliance"
)

// verifyCluster verifies every node's trail on a cluster node
// (compliance.Service.VerifyCluster): the report is this node's chain,
// the cluster report every node's verdict.
func verifyCluster(ctx context.Context, svc *compliance.Service, progress func(done, total int64)) (audit.Report, *compliance.ClusterReport, error) {
	cr, err := svc.VerifyCluster(ctx, progress)
	if err != nil {
		return audit.Report{}, nil, err
	}
	return *cr.Nodes[0].Report, &cr, nil
}

// clusterOK says whether every node other than this one verified, and
// the creations were checked without a token missing its record.
func clusterOK(cr *compliance.ClusterReport) bool {
	ok := cr.Creations.Checked && len(cr.Creations.Missing) == 0
	for _, n := range cr.Nodes[1:] {
		ok = ok && n.OK()
	}
	// This node's own verdict includes its published head.
	return ok && len(cr.Nodes[0].Problems) == 0
}

// clusterProblems counts what the cluster's verify found beyond this
// node's chain: each other node not verified or failed, each finding
// against a published head, each token without its creation record.
func clusterProblems(cr *compliance.ClusterReport) int {
	n := len(cr.Creations.Missing) + cr.Creations.MoreMissing
	for i, node := range cr.Nodes {
		n += len(node.Problems)
		if i > 0 && node.Report != nil {
			n += len(node.Report.Problems) + node.Report.MoreProblems
		}
		if node.State == compliance.TrailNotVerified {
			n++
		}
	}
	if !cr.Creations.Checked {
		n++
	}
	return n
}
