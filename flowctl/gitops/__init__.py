"""GitOps: flows reviewed like code, published like infrastructure (docs/gitops.md).

git.py       the git CLI (tags, archive, status, push) as typed calls
tree.py      a project as committed at a ref (never the working tree for plan/apply)
diff.py      resource- and field-level differences between two bundles
plan.py      the Plan model (plan.json), bound to a commit and a runner version
apply.py     refusal checks, then publish: PUT /v1/bundle with expected_version, annotated tag, push
rollback.py  publish an earlier tag's content (read from git) as a new version
history.py   the publish tags, and which one the runner runs now (by content hash) or drift
"""
