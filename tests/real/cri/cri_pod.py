"""Run one pod through containerd's CRI plugin the way the kubelet does: a
sandbox with a kubepods cgroup parent and a log directory under LOGS, one
container with a 64 MiB limit that allocates until the kernel kills it.
Prints what CRI reports as JSON. The pod is kept (for oomwatch to read its
runtime state) until `cleanup` is called.

usage: cri_pod.py STUBS SOCK LOGS run QOS NAMESPACE POD CONTAINER [hog|eater]
       cri_pod.py STUBS SOCK LOGS start QOS NAMESPACE POD CONTAINER PREFIX SIZE LIMIT ADJ
         (start: an eater that holds SIZE, under PREFIX/kubepods, not waited for;
          LIMIT 0 = none; prints the same JSON while it runs)
       cri_pod.py STUBS SOCK LOGS restart SANDBOX_ID CONTAINER SIZE LIMIT ADJ
       cri_pod.py STUBS SOCK LOGS cleanup SANDBOX_ID
"""
import json, sys, time, uuid
sys.path.insert(0, sys.argv[1])
import grpc
import v1_pb2 as pb, v1_pb2_grpc as pbg

sock, logs, cmd = sys.argv[2], sys.argv[3], sys.argv[4]
rt = pbg.RuntimeServiceStub(grpc.insecure_channel("unix://" + sock))

if cmd == "cleanup":
    sid = sys.argv[5]
    for c in rt.ListContainers(pb.ListContainersRequest(filter=pb.ContainerFilter(pod_sandbox_id=sid))).containers:
        rt.RemoveContainer(pb.RemoveContainerRequest(container_id=c.id))
    rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sid))
    rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sid))
    sys.exit(0)

def container(sid, scfg, name, image, command, args, limit, adj):
    res = pb.LinuxContainerResources(memory_limit_in_bytes=limit, oom_score_adj=adj)
    ccfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name, attempt=int(time.time() * 1000) % 100000),
        image=pb.ImageSpec(image=f"localhost/{image}:test"), command=command, args=args, log_path=f"{name}/{int(time.time() * 1000)}.log",
        labels={"io.kubernetes.container.name": name}, linux=pb.LinuxContainerConfig(resources=res))
    cid = rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=sid, config=ccfg, sandbox_config=scfg)).container_id
    rt.StartContainer(pb.StartContainerRequest(container_id=cid))
    return cid

if cmd in ("start", "restart"):
    if cmd == "start":
        qos, ns, pod, name, prefix, size, limit, adj = sys.argv[5:13]
        uid = str(uuid.uuid4())
        kp = f"{prefix}/kubepods"
        parent = f"{kp}/pod{uid}" if qos == "guaranteed" else f"{kp}/{qos}/pod{uid}"
        scfg = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name=pod, namespace=ns, uid=uid, attempt=0),
            log_directory=f"{logs}/{ns}_{pod}_{uid}", labels={"io.kubernetes.pod.name": pod, "io.kubernetes.pod.namespace": ns, "io.kubernetes.pod.uid": uid},
            linux=pb.LinuxPodSandboxConfig(cgroup_parent=parent,
                security_context=pb.LinuxSandboxSecurityContext(namespace_options=pb.NamespaceOption(network=pb.NODE))))
        sid = rt.RunPodSandbox(pb.RunPodSandboxRequest(config=scfg)).pod_sandbox_id
        open(f"{logs}/.sandbox-{sid}.json", "w").write(json.dumps({"ns": ns, "pod": pod, "uid": uid, "parent": parent}))
    else:
        sid, name, size, limit, adj = sys.argv[5:10]
        m = json.load(open(f"{logs}/.sandbox-{sid}.json"))
        ns, pod, uid, parent = m["ns"], m["pod"], m["uid"], m["parent"]
        scfg = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name=pod, namespace=ns, uid=uid, attempt=0),
            log_directory=f"{logs}/{ns}_{pod}_{uid}", linux=pb.LinuxPodSandboxConfig(cgroup_parent=parent,
                security_context=pb.LinuxSandboxSecurityContext(namespace_options=pb.NamespaceOption(network=pb.NODE))))
    cid = container(sid, scfg, name, "eater", ["/eater"], ["--size", size, "--step", "16Mi", "--interval", "100ms", "--hold", "forever"],
                    int(limit), int(adj))
    print(json.dumps({"pod_uid": uid, "namespace": ns, "pod": pod, "container": name, "container_id": cid, "sandbox_id": sid, "cgroup_parent": parent}))
    sys.exit(0)

if cmd == "status":
    st = rt.ContainerStatus(pb.ContainerStatusRequest(container_id=sys.argv[5])).status
    print(json.dumps({"state": pb.ContainerState.Name(st.state), "exit_code": st.exit_code, "reason": st.reason}))
    sys.exit(0)

qos, ns, pod, name = sys.argv[5:9]
image = sys.argv[9] if len(sys.argv) > 9 else "hog"
command, args = {"hog": (["/hog"], ["200"]), "eater": (["/eater"], ["--size", "200Mi", "--step", "16Mi", "--interval", "0"])}[image]
uid = str(uuid.uuid4())
parent = f"/kubepods/pod{uid}" if qos == "guaranteed" else f"/kubepods/{qos}/pod{uid}"
meta = pb.PodSandboxMetadata(name=pod, namespace=ns, uid=uid, attempt=0)
labels = {"io.kubernetes.pod.name": pod, "io.kubernetes.pod.namespace": ns, "io.kubernetes.pod.uid": uid}
scfg = pb.PodSandboxConfig(metadata=meta, log_directory=f"{logs}/{ns}_{pod}_{uid}", labels=labels,
    linux=pb.LinuxPodSandboxConfig(cgroup_parent=parent,
        security_context=pb.LinuxSandboxSecurityContext(namespace_options=pb.NamespaceOption(network=pb.NODE))))
sid = rt.RunPodSandbox(pb.RunPodSandboxRequest(config=scfg)).pod_sandbox_id
adj = {"besteffort": 1000, "burstable": 988, "guaranteed": -997}[qos]
ccfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name, attempt=0),
    image=pb.ImageSpec(image=f"localhost/{image}:test"), command=command, args=args, log_path=f"{name}/0.log",
    labels={"io.kubernetes.container.name": name},
    linux=pb.LinuxContainerConfig(resources=pb.LinuxContainerResources(memory_limit_in_bytes=64 << 20, oom_score_adj=adj)))
cid = rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=sid, config=ccfg, sandbox_config=scfg)).container_id
rt.StartContainer(pb.StartContainerRequest(container_id=cid))
for _ in range(200):
    st = rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status
    if st.state == pb.CONTAINER_EXITED:
        break
    time.sleep(0.05)
ps = rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sid)).status
print(json.dumps({"pod_uid": ps.metadata.uid, "namespace": ps.metadata.namespace, "pod": ps.metadata.name,
    "container": st.metadata.name, "container_id": cid, "sandbox_id": sid, "cgroup_parent": parent,
    "state": pb.ContainerState.Name(st.state), "exit_code": st.exit_code, "reason": st.reason}))
