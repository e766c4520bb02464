//! Lambda `share-cluster`: share the source cluster with this account through RAM, in the source account (`clonesync::aws::ram`).

clonesync::lambda_function!(clonesync::handlers::share_cluster);
