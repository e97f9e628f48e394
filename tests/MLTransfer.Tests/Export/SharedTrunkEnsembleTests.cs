using Google.Protobuf;
using MLTransfer.Backbones;
using MLTransfer.Export;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;
using Onnx;

namespace MLTransfer.Tests.Export;

public class SharedTrunkEnsembleTests
{
    // Y = (X · A) · B for X [N, 3]: A is the trunk, B the part each member trained.
    private static ModelProto Member(float[] a, float[] b)
    {
        var graph = new GraphProto { Name = "member" };
        graph.Input.Add(FeaturizerGraph.ValueInfo("X", "N", 3));
        graph.Output.Add(FeaturizerGraph.ValueInfo("Y", "N", 3));
        graph.Initializer.Add(FeaturizerGraph.Tensor("A", [3], a));
        graph.Initializer.Add(FeaturizerGraph.Tensor("B", [3], b));
        graph.Node.Add(FeaturizerGraph.Node("Mul", "trunk", ["X", "A"], ["T"]));
        graph.Node.Add(FeaturizerGraph.Node("Mul", "top", ["T", "B"], ["Y"]));
        graph.ValueInfo.Add(FeaturizerGraph.ValueInfo("T", "N", 3));
        var model = new ModelProto { IrVersion = 8, Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        return model;
    }

    [Test]
    public void Should_run_the_trunk_once_and_output_every_members_features_side_by_side()
    {
        float[] a = [1, 2, 3];
        var members = new[] { Member(a, [1, 1, 1]), Member(a, [10, 0, -1]), Member(a, [0, 2, 0]) };
        var combined = SharedTrunkEnsemble.Combine(members, "T", "Y");

        float[] x = [1, 1, 1, /* second image */ 2, 0, 1];
        var y = TestData.RunOnnxRuntime(combined.ToByteArray(), "X", x, [2, 3], "Y");

        // By hand: T = [1, 2, 3] and [2, 0, 3]; member outputs T·B, side by side per image.
        Assert.That(y, Is.EqualTo(new float[]
        {
            1, 2, 3, 10, 0, -3, 0, 4, 0,
            2, 0, 3, 20, 0, -3, 0, 0, 0,
        }).Within(1e-6));
        Assert.That(combined.Graph.Node.Count(n => n.OpType == "Mul" && n.Input.Contains("X")), Is.EqualTo(1), "the trunk runs once");
        Assert.That(combined.Graph.Output.Single().Type.TensorType.Shape.Dim[1].DimValue, Is.EqualTo(9));
        Assert.That(combined.Graph.Initializer.Select(t => t.Name).Distinct().Count(), Is.EqualTo(combined.Graph.Initializer.Count), "initializer names are unique");
        Assert.That(TestData.RunOnnxRuntime(members[1].ToByteArray(), "X", x, [2, 3], "Y"), Is.EqualTo(new float[] { 10, 0, -3, 20, 0, -3 }), "the members are left as they were");
    }

    [Test]
    public void Should_repeat_the_whole_graph_when_the_members_part_at_the_input()
    {
        var members = new[] { Member([1, 1, 1], [1, 2, 3]), Member([2, 2, 2], [1, 0, 0]) };
        var y = TestData.RunOnnxRuntime(SharedTrunkEnsemble.Combine(members, "X", "Y").ToByteArray(), "X", [1, 1, 1], [1, 3], "Y");

        Assert.That(y, Is.EqualTo(new float[] { 1, 2, 3, 2, 0, 0 }).Within(1e-6));
    }

    [Test]
    public void Should_return_a_copy_of_a_single_member()
    {
        var member = Member([1, 2, 3], [1, 1, 1]);
        var combined = SharedTrunkEnsemble.Combine([member], "T", "Y");

        Assert.That(combined.ToByteArray(), Is.EqualTo(member.ToByteArray()));
        Assert.That(combined, Is.Not.SameAs(member));
    }

    [Test]
    public void Should_refuse_members_of_different_networks_an_output_that_does_not_depend_on_the_shared_value_or_a_missing_output()
    {
        var member = Member([1, 2, 3], [1, 1, 1]);
        var other = Member([1, 2, 3], [1, 1, 1]);
        other.Graph.Node[1].OpType = "Add";

        Assert.That(() => SharedTrunkEnsemble.Combine([member, other], "T", "Y"),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains("not copies of one network"));
        Assert.That(() => SharedTrunkEnsemble.Combine([member, member], "nothing", "Y"),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains("does not depend on 'nothing'"));
        Assert.That(() => SharedTrunkEnsemble.Combine([member, member], "T", "Z"),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains("no output 'Z'"));
    }
}
