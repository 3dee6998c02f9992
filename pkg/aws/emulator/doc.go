// Package emulator is an emulator of the AWS APIs nodewright calls (EC2, SSM, Pricing and
// SQS) that serves their real wire protocols on loopback, so that the unmodified
// aws-sdk-go-v2 clients talk to it through an endpoint override:
//
//	e := emulator.New(emulator.Options{})
//	if err := e.Start(); err != nil { ... }
//	defer e.Close()
//	client := ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(e.URL()) })
//
// It owns the emulated cloud of one account in us-east-1 (zones, subnets, security groups,
// AMIs, launch templates, instances, prices, queues), the faults injected into it, and the
// registration of a launched instance as a Node, the part a kubelet plays. The sandbox and the
// tests of pkg/aws embed it; Handler serves it from another server.
//
// It must not import pkg/aws, pkg/cloud, the scheduler, the plugin or the lifecycle: it
// stands for AWS, and knows nodewright only through the wire. It imports pkg/aws/catalog for
// the facts about instance types, and client-go to register Nodes.
//
// # Protocols
//
// EC2 speaks the query protocol: a form POST with Action and Version=2016-11-15, answered
// with <ActionResponse> XML holding <requestId> and lists as <item>s; errors are
// <Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response> with
// HTTP 400 (503 for RequestLimitExceeded, 412 for DryRunOperation). SSM and Pricing speak
// JSON 1.1, SQS JSON 1.0 (all routed by X-Amz-Target), errors as {"__type", "message"}; SQS
// errors also carry x-amzn-query-error so that the SDK reports the query-compatible code
// (AWS.SimpleQueueService.NonExistentQueue). An action the emulator does not implement
// answers InvalidAction (EC2) or UnknownOperationException (JSON).
//
// Implemented: EC2 DescribeInstanceTypes, DescribeInstanceTypeOfferings,
// DescribeAvailabilityZones, DescribeSpotPriceHistory, DescribeSubnets,
// DescribeSecurityGroups, DescribeImages, CreateLaunchTemplate, DescribeLaunchTemplates,
// DeleteLaunchTemplate, CreateFleet (instant only), DescribeInstances, TerminateInstances,
// CreateTags; SSM GetParameter; Pricing GetProducts; SQS GetQueueUrl, SendMessage,
// ReceiveMessage, DeleteMessage. Requests are validated as EC2 validates the fields nodewright
// sends: required parameters (MissingParameter), enums, ranges and formats
// (InvalidParameterValue, *.Malformed), unknown filters, references to resources that do not
// exist (*.NotFound), MaxResults with ID lists (InvalidParameterCombination), pagination
// tokens bound to their request (InvalidPaginationToken), at most 60 overrides per
// CreateFleet launch template configuration, tag rules. Features nodewright does not use
// answer Unsupported rather than being ignored: fleets other than instant,
// InstanceRequirements, weighted capacity, capacity blocks, Single*/Min*/MaxTotalPrice fleet
// options.
//
// # The emulated region
//
// Zones are us-east-1a to us-east-1f (zone IDs use1-az1 to use1-az6 in that order). Which
// instance types a zone offers follows a deterministic rule (Offered): zones a, b and c offer
// every catalog type; zones d and e every type except those whose FNV-1a 32-bit hash of
// "<type>@<zone>" is 0 modulo 10 (about a tenth, different per zone); zone f only generations
// 1 to 6 of the general-purpose, compute, memory, storage and burstable families, so it lacks
// bare metal, GPU and accelerator families (p, g, gr, inf, trn, dl, f, vt), Mac, HPC and
// high-memory (u) families, and every generation 7 or later family. t3a.2xlarge is offered
// everywhere.
//
// On-demand prices are the catalog's. There is a spot pool where a zone offers a type and EC2
// sells its family as spot: not the Mac (mac, mac-m), high-memory (u-*, u7i*) or HPC (hpc)
// families, which EC2 sells on demand only (sources in noSpotPrefixes). Those types do not
// list the spot usage class, have no spot price history, and a spot CreateFleet override for
// them fails with Unsupported. Spot prices follow a deterministic model (ModelSpotPrice): a
// saving off on-demand within the band of the type's family group, placed in the band by the
// FNV-1a 64-bit hash of "spot/<type>/<zone>", rounded to 4 decimals, so the same in every run
// and different per zone. The bands span the 10th to 90th percentile of the AWS Spot Instance
// Advisor's savings for the group's types in us-east-1 (spotBands): burstable (t) 55-75%,
// general purpose (m) and compute (c) 50-75%, memory (r, x, z) 50-80%, storage (i, d, h, im,
// is) 55-80%, GPU (g, gr, p) 50-80%, other accelerators (inf, trn, dl, f, vt) 60-80%, a1
// 0-5%; a family prefix in neither table would take 50-75%. SetSpotPrice overrides a pool.
// Mac types also have no on-demand price: they launch only on dedicated hosts, which the
// emulator does not have. Spot price history has one "Linux/UNIX" entry per pool, timestamped
// at the start of the hour (or when SetSpotPrice changed it).
//
// CreateFleet launches the on-demand units, then the spot units, each into the best pool of
// its overrides that has not failed in this request; ties go to the override listed first.
// On-demand: lowest-price takes the cheapest; prioritized the lowest Priority (unset last),
// then the cheapest. Spot: lowest-price (and diversified) the cheapest; capacity-optimized
// the deepest pool by a deterministic capacity score (FNV-1a of "capacity/<type>/<zone>");
// capacity-optimized-prioritized the lowest Priority, then the deepest; price-capacity-optimized
// the deepest among the pools priced within 20% of the cheapest. A pool that cannot launch
// (not offered in its zone, no spot pool, MaxPrice below the spot price, injected insufficient
// capacity, unknown AMI, AMI of another architecture, unknown security group, no free address)
// adds an entry to the response's Errors with EC2's error code (Unsupported,
// SpotMaxPriceTooLow, InsufficientInstanceCapacity, InvalidAMIID.NotFound,
// InvalidParameterValue, InvalidGroup.NotFound, InsufficientFreeAddressesInSubnet) and the
// next pool is tried. DefaultTargetCapacityType defaults to on-demand. A ClientToken makes the
// request idempotent: the same token and parameters answer the first response again and
// launch nothing; the same token with other parameters answers IdempotentParameterMismatch.
// Instances get the request's and the launch template's instance tags, plus
// aws:ec2:fleet-id, aws:ec2launchtemplate:id and aws:ec2launchtemplate:version as on EC2.
//
// Default subnets (DefaultSubnets) are one per zone, 10.0.(16*i).0/20, tagged
// nodewright.dev/discovery=<cluster name>; default security groups (DefaultSecurityGroups)
// are the VPC's "default" and "<cluster>-node", tagged likewise. The public AMI SSM parameters
// for Kubernetes 1.28 to 1.40 (AL2023 standard, nvidia and neuron, Bottlerocket and
// Bottlerocket nvidia, x86_64 and arm64) resolve to deterministic AMI IDs that DescribeImages
// knows. There is one SQS queue, DefaultQueueName, unless Options.Queues names others; events
// go to the first.
//
// # Instances
//
// An instance is pending for Options.LaunchLatency, then running; TerminateInstances makes it
// shutting-down for Options.TerminateLatency, then terminated, and DescribeInstances shows it
// for Options.TerminatedRetention more. Time is the injected clock's. Its private address is
// drawn from its subnet, never reusing one an instance of this emulator had, and its private
// DNS name is ip-10-0-x-y.ec2.internal. Options.LaunchLatencyJitter and
// Options.JoinDelayJitter (none by default) spread the instances' launch latencies and join
// delays: each instance adds its own uniform draws in [0, jitter), made at launch.
//
// # Faults
//
// InsufficientCapacity (per type, zone, capacity type), Throttle (the next n calls of an
// operation), Fail (the next n calls of an operation, with an error code not retried),
// SetLatency, InterruptSpot (an "EC2 Spot Instance Interruption Warning" event on
// the queue now, the instance terminated after Options.SpotInterruptionNotice),
// RebalanceRecommendation, ScheduledChange (an AWS Health scheduledChange event),
// SendStateChangeNotification, NeverJoin and NeverJoinNext. The same are served over HTTP
// under ControlPrefix. ThrottleFraction throttles each call of an operation, or of every
// operation, with a probability, drawn from Options.Rand so that a seeded run throttles the
// same calls; calls Throttle still counts go first. Calls records every request, its
// parameters and its error code.
//
// # Joining
//
// With Options.KubeClient or Options.RESTConfig, the emulator plays the kubelet's
// registration: JoinDelay (plus its jitter) after an instance is running, unless a fault says
// it never joins, it creates a Node (the Nodes of instances due together at once, as their
// kubelets would) named after the private DNS name, with spec.providerID
// aws:///<zone>/<instance-id>; capacity cpu = vCPUs, memory = the catalog's memory, pods = the
// catalog's maxPods (or the kubelet's maxPods), ephemeral-storage = the launch template's
// first block device size (20Gi without one), and nvidia.com/gpu, amd.com/gpu or
// habana.ai/gaudi for GPU types as if their device plugin had registered; allocatable equal
// to capacity minus what the user data reserves. Labels: kubernetes.io/hostname,
// kubernetes.io/os=linux, kubernetes.io/arch, then the user data's --node-labels (which may
// override those three), then node.kubernetes.io/instance-type, topology.kubernetes.io/zone
// and topology.kubernetes.io/region as a cloud provider sets them. Taints: only those the
// user data registers. kwok (run with --manage-all-nodes) then makes the Node Ready.
//
// The user data must be AL2023 nodeadm user data, either a MIME multipart document
//
//	MIME-Version: 1.0
//	Content-Type: multipart/mixed; boundary="BOUNDARY"
//
//	--BOUNDARY
//	Content-Type: application/node.eks.aws
//
//	apiVersion: node.eks.aws/v1alpha1
//	kind: NodeConfig
//	spec:
//	  cluster:
//	    name: my-cluster
//	    apiServerEndpoint: https://example.com
//	    certificateAuthority: Y2VydGlmaWNhdGVBdXRob3JpdHk=
//	    cidr: 10.100.0.0/16
//	  kubelet:
//	    config:
//	      maxPods: 110
//	      kubeReserved: {cpu: 80m, memory: 893Mi}
//	      systemReserved: {memory: 100Mi}
//	      evictionHard: {memory.available: 100Mi, nodefs.available: 10%}
//	      registerWithTaints: [{key: k, value: v, effect: NoSchedule}]
//	    flags:
//	      - --node-labels=nodewright.dev/provisioner-name=default,team=a
//	      - --register-with-taints=dedicated=gpu:NoSchedule,example.com/startup:NoExecute
//	--BOUNDARY--
//
// or a bare NodeConfig YAML. Parts of other types (shell scripts) are ignored; a part may
// be base64 (Content-Transfer-Encoding) and hold several YAML documents. Several NodeConfigs
// merge as nodeadm merges them: later cluster fields and kubelet config keys win, flags
// accumulate. NodeConfigs are decoded strictly; apiVersion node.eks.aws/v1alpha1 or v1beta1.
// As nodeadm, the emulator requires spec.cluster name, apiServerEndpoint,
// certificateAuthority and cidr. Of the kubelet config it reads maxPods, kubeReserved,
// systemReserved, evictionHard (memory.available and nodefs.available, a quantity or a
// percentage) and registerWithTaints; of the flags (--name=value, or --name value)
// --node-labels=k=v,..., --register-with-taints=k=v:Effect,... (or k:Effect), --max-pods,
// --kube-reserved, --system-reserved and --eviction-hard=signal<threshold,...; flags win over
// the config, as on the kubelet's command line, and other flags are ignored. As the kubelet,
// it rejects invalid labels and taints and --node-labels in the kubernetes.io and k8s.io
// namespaces other than the kubelet's own (node-role.kubernetes.io/x is refused). User data
// it rejects (including Bottlerocket TOML, which the emulator does not read) keeps the
// instance from ever joining and is reported in Instance.JoinError.
//
// When an instance terminates, the emulator does not delete its Node: in a real cluster the
// cloud provider's node lifecycle controller would, and nodewright's lifecycle must not rely
// on it, so it is left to the autoscaler.
package emulator
